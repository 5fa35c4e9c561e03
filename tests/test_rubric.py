"""The shipped rubric loads; every kind of broken rubric fails with file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fixtures.build import build_fixture
from grader.checks import CHECKS
from grader.errors import RubricError
from grader.pipeline import DEFAULT_RUBRIC, GradeRequest, grade
from grader.rubric import Credit, load_rubric
from grader.sandbox.limits import Limits

SHIPPED = Path(__file__).resolve().parents[1] / "rubrics" / "llmops-exam.yaml"


def test_shipped_rubric_loads_and_binds_the_whole_catalogue():
    rubric = load_rubric(SHIPPED)
    assert rubric.max_points == 100
    assert [ex.points for ex in rubric.exercises.values()] == [15, 15, 15, 20, 15, 20]
    bound = [check for ex in rubric.exercises.values() for c in ex.criteria for check in c.checks]
    assert sorted(bound) == sorted(CHECKS)
    assert rubric.exercises["ex3"].settings == {}  # the scenarios' own defaults, one source of truth
    assert any(c.visibility == "hidden" for ex in rubric.exercises.values() for c in ex.criteria)
    assert rubric.band_for(95) == "excellence" and rubric.band_for(59.99) == "fail"


def _minimal() -> str:
    """A valid rubric text built from the catalogue: one criterion per exercise."""
    lines = ["name: t", 'version: "1"', "pass_mark: 60", "bands:",
             "  - {name: pass, min: 60}", "  - {name: fail, min: 0}", "exercises:"]
    for ex_id in ("ex1", "ex2", "ex3", "ex4", "ex5", "ex6"):
        checks = ", ".join(c for c, spec in CHECKS.items() if spec.exercise == ex_id)
        lines += [f"  {ex_id}:", f"    title: {ex_id}", "    points: 10", "    criteria:",
                  f"      - id: {ex_id}.all", "        title: all", "        points: 10",
                  "        visibility: public", "        hint: do it",
                  f"        checks: [{checks}]", "        credit: all"]
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken-rubric.yaml"
    path.write_text(text)
    return path


def _line(text: str, needle: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def test_minimal_rubric_is_valid(tmp_path):
    rubric = load_rubric(_write(tmp_path, _minimal()))
    assert rubric.exercises["ex1"].criteria[0].credit is Credit.ALL


def _first_check(ex_id: str) -> str:
    return next(c for c, spec in CHECKS.items() if spec.exercise == ex_id)


@pytest.mark.parametrize(
    ("mutate", "needle", "field"),
    [
        # unknown key
        (lambda t: t.replace("    title: ex2\n", "    title: ex2\n    colour: red\n"),
         "colour: red", "exercises.ex2.colour"),
        # wrong type
        (lambda t: t.replace("        points: 10", '        points: "ten"', 1),
         'points: "ten"', "exercises.ex1.criteria[0].points"),
        # bad visibility value
        (lambda t: t.replace("visibility: public", "visibility: secret", 1),
         "visibility: secret", "exercises.ex1.criteria[0].visibility"),
        # points not summing
        (lambda t: t.replace("    points: 10\n    criteria:", "    points: 12\n    criteria:", 1),
         "    points: 12", "exercises.ex1.points"),
        # unknown check id
        (lambda t: t.replace(f"[{_first_check('ex3')}", f"[ex3.no_such_check, {_first_check('ex3')}"),
         "ex3.no_such_check", "exercises.ex3.criteria[0].checks[0]"),
        # bands not ordered
        (lambda t: t.replace("  - {name: fail, min: 0}", "  - {name: fail, min: 70}"),
         "name: fail", "bands[1].min"),
        # missing field
        (lambda t: t.replace("        hint: do it\n", "", 1),
         "- id: ex1.all", "exercises.ex1.criteria[0]"),
        # duplicate key
        (lambda t: t.replace("name: t\n", "name: t\nname: u\n"), "name: u", "name"),
        # min_complete naming an unknown exercise
        (lambda t: t.replace("exercises:\n", "min_complete: {count: 1, of: [ex9]}\nexercises:\n"),
         "min_complete", "min_complete.of[0]"),
        # a limit the grader does not have
        (lambda t: t.replace("exercises:\n", "limits:\n  memory_bytes: 268435456\n  cpu_count: 2\nexercises:\n"),
         "cpu_count", "limits.cpu_count"),
        # a misspelled setting: the scenario does not read it (it would silently keep its default)
        (lambda t: t.replace("    title: ex3\n", "    title: ex3\n    settings:\n      hang_limt_s: 30\n"),
         "hang_limt_s", "exercises.ex3.settings.hang_limt_s"),
        # a setting the scenario cannot take: no breaker opens after zero requests
        (lambda t: t.replace("    title: ex3\n", "    title: ex3\n    settings:\n      breaker_requests: 0\n"),
         "breaker_requests", "exercises.ex3.settings.breaker_requests"),
        # a setting of the wrong kind
        (lambda t: t.replace("    title: ex2\n", "    title: ex2\n    settings:\n      drain_limit_s: soon\n"),
         "drain_limit_s", "exercises.ex2.settings.drain_limit_s"),
    ],
    ids=["unknown-key", "wrong-type", "bad-enum", "points-sum", "unknown-check", "bands-order",
         "missing-field", "duplicate-key", "min-complete-unknown", "unknown-limit", "misspelled-setting",
         "impossible-setting", "setting-of-wrong-kind"],
)
def test_invalid_rubric_names_file_line_and_field(tmp_path, mutate, needle, field):
    text = mutate(_minimal())
    assert text != _minimal()
    with pytest.raises(RubricError) as info:
        load_rubric(_write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    assert "broken-rubric.yaml" in message
    assert f"line {_line(text, needle)}," in message, message
    assert field in message


def test_check_bound_twice(tmp_path):
    check = _first_check("ex4")
    text = _minimal().replace(f"[{check}", f"[{check}, {check}")
    with pytest.raises(RubricError, match=rf"line {_line(text, check)}, exercises\.ex4\.criteria\[0\]\.checks\[1\]: .*already bound"):
        load_rubric(_write(tmp_path, text))


def test_catalogue_check_left_unbound(tmp_path):
    check = _first_check("ex5")
    text = _minimal().replace(f"[{check}, ", "[")
    with pytest.raises(RubricError, match=rf"line {_line(text, '  ex5:')}, exercises\.ex5: .*'{re.escape(check)}' is bound to no criterion"):
        load_rubric(_write(tmp_path, text))


def test_invalid_yaml_syntax_is_one_line_with_line_number(tmp_path):
    text = _minimal().replace("    title: ex4\n", "    title: [unclosed\n")
    with pytest.raises(RubricError, match=r"broken-rubric\.yaml, line \d+: invalid YAML") as info:
        load_rubric(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(RubricError, match="nope.yaml"):
        load_rubric(tmp_path / "nope.yaml")


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(RubricError, match="line 1"):
        load_rubric(_write(tmp_path, yaml.safe_dump(["a", "b"])))


def test_limits_override_the_graders_defaults_by_name(tmp_path):
    text = _minimal().replace("exercises:\n", "limits: {memory_bytes: 268435456, install_s: 120}\nexercises:\n")
    limits = Limits.from_settings(load_rubric(_write(tmp_path, text)).limits)
    assert (limits.memory_bytes, limits.install_s) == (256 * 2**20, 120.0)
    assert limits.processes == Limits().processes


def test_the_rubrics_limits_are_the_ones_a_grading_applies_and_reports(tmp_path):
    shipped = DEFAULT_RUBRIC.read_text()
    rubric = _write(tmp_path, shipped.replace("\nexercises:\n", "\nlimits: {memory_bytes: 268435456}\nexercises:\n", 1))
    submission = build_fixture("no-src-api")  # unrunnable: graded in seconds
    report = grade(GradeRequest(source=str(submission), rubric_path=rubric, only=frozenset({"ex1"})))
    assert any(line.startswith("limits: memory 256 MiB,") for line in report.isolation), report.isolation
