"""Scoring rules: points, ungraded criteria, partial credit, the min_complete rule, --only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from grader.checks import CHECKS
from grader.errors import UsageError
from grader.models import CheckResult, CheckStatus, CriterionStatus, GradeReport, Submission
from grader.rubric import load_rubric
from grader.scoring import score

RUBRIC = load_rubric(Path(__file__).resolve().parents[1] / "rubrics" / "llmops-exam.yaml")
SUBMISSION = Submission(source="https://example.org/student.git", commit_sha="abc123", ref="main",
                        author_date=None, commit_count=3)
WHEN = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _results(**overrides: tuple[CheckStatus, str]) -> dict[str, CheckResult]:
    """Every catalogue check passed, except ``overrides`` (check id with '.' written '__')."""
    results = {cid: CheckResult(check_id=cid, status=CheckStatus.PASSED, reason="ok") for cid in CHECKS}
    for key, (status, reason) in overrides.items():
        cid = key.replace("__", ".")
        results[cid] = CheckResult(check_id=cid, status=status, reason=reason)
    return results


def _score(results: dict[str, CheckResult], **kwargs) -> GradeReport:
    return score(RUBRIC, results, SUBMISSION, grader_version="t", graded_at=WHEN, **kwargs)


def _criterion(report: GradeReport, criterion_id: str):
    return next(c for ex in report.exercises for c in ex.criteria if c.criterion_id == criterion_id)


def test_all_passed_is_100_and_excellence():
    report = _score(_results())
    assert (report.points, report.max_points, report.band, report.passed, report.complete) == (
        100, 100, "excellence", True, True)
    assert report.rule_notes == ()


def test_failed_check_loses_the_criterion_points_with_its_reason():
    report = _score(_results(ex3__body_limit=(CheckStatus.FAILED, "got 422 after reading 2 MB, expected 413")))
    crit = _criterion(report, "ex3.body_limit")
    assert (crit.points, crit.status) == (0, CriterionStatus.FAILED)
    assert crit.reasons == ("got 422 after reading 2 MB, expected 413",)
    assert report.points == 98 and report.band == "excellence"


def test_error_leaves_criterion_ungraded_and_report_incomplete():
    report = _score(_results(ex2__drain_bounded=(CheckStatus.ERROR, "docker daemon went away")))
    crit = _criterion(report, "ex2.bounded")
    assert crit.points is None and crit.status is CriterionStatus.UNGRADED
    assert crit.reasons == ("docker daemon went away",)
    assert report.complete is False
    assert report.points == 96 and report.max_points == 100  # a lower bound, not a 0


def test_not_gradable_counts_as_not_passed_with_its_reason():
    why = "the API did not start: No module named 'config.env_validator'"
    report = _score(_results(ex5__recovers=(CheckStatus.NOT_GRADABLE, why),
                             ex5__ready_when_up=(CheckStatus.NOT_GRADABLE, why)))
    assert _criterion(report, "ex5.recovers").points == 0
    assert _criterion(report, "ex5.recovers").reasons == (why,)
    assert report.complete is True and report.points == 94


def test_proportional_credit_keeps_two_decimals():
    report = _score(_results(ex1__refuses_short_secret=(CheckStatus.FAILED, "started with a 10-character secret")))
    crit = _criterion(report, "ex1.fail_fast")
    assert (crit.points, crit.status) == (5.33, CriterionStatus.PARTIAL)
    assert report.points == 97.33


def test_min_complete_refuses_the_pass_and_caps_the_band():
    # ex1 and ex2 each lose a point-bearing criterion: only ex6 of {ex1, ex2, ex6} is complete.
    report = _score(_results(ex1__cors_rejects_unlisted_origin=(CheckStatus.FAILED, "echoes any origin"),
                             ex2__cleanup_logged=(CheckStatus.FAILED, "no cleanup logged")))
    assert report.points == 92
    assert (report.band, report.passed) == ("fail", False)
    assert len(report.rule_notes) == 1 and "complete: ex6" in report.rule_notes[0]


def test_min_complete_met_adds_no_note():
    report = _score(_results(ex1__cors_rejects_unlisted_origin=(CheckStatus.FAILED, "echoes any origin")))
    assert (report.points, report.band, report.passed, report.rule_notes) == (97, "excellence", True, ())


def test_only_grades_and_counts_the_selected_exercises():
    results = {cid: r for cid, r in _results().items() if cid.startswith("ex1.")}
    report = _score(results, only={"ex1"})
    assert [ex.exercise_id for ex in report.exercises] == ["ex1"]
    assert (report.points, report.max_points, report.complete) == (15, 15, True)
    assert report.band == "excellence"
    # the min_complete rule cannot be established from ex1 alone: no pass, band kept
    assert report.passed is False
    assert any("only ex1 graded" in note for note in report.rule_notes)
    assert any("ex2, ex6 not graded" in note for note in report.rule_notes)


def test_missing_result_of_a_selected_exercise_is_ungraded_not_zero():
    results = _results()
    del results["ex4.mlflow_fallback"]
    report = _score(results)
    assert _criterion(report, "ex4.mlflow_fallback").status is CriterionStatus.UNGRADED
    assert report.complete is False


def test_unknown_exercise_in_only():
    with pytest.raises(UsageError, match="ex9"):
        _score(_results(), only={"ex9"})
