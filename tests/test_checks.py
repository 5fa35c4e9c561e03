"""The check catalogue is the one list rubrics bind to: it must stay well formed."""

from grader.checks import CHECKS, EXERCISES, checks_of


def test_every_check_id_is_prefixed_by_its_exercise():
    for check_id, spec in CHECKS.items():
        assert check_id.startswith(spec.exercise + "."), check_id
        assert spec.exercise in EXERCISES


def test_every_exercise_has_checks():
    assert all(checks_of(exercise) for exercise in EXERCISES)
