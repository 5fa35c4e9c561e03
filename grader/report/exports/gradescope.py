"""Gradescope autograder ``results.json`` (fields: shared/formats/LMS-EXPORTS.md).

One test per rubric criterion, numbered ``<exercise>.<criterion>`` ("1.2"): ``score`` the
criterion's points, ``status`` passed only when every point is earned. Hidden criteria are
``after_published`` (shown once the instructor publishes).

Gradescope hides a student's total while any test is not yet visible (``after_due_date``,
``after_published``); ``hidden`` tests never become visible and so hide nothing. Hence:
- an ungraded criterion (the grader failed) is ``after_published`` with an explanation: the
  lower-bound total stays hidden until an instructor re-grades and publishes;
- a submission that could not be graded has no ``score`` and one ``after_published`` test
  saying why, so no student ever sees a 0 that is not theirs.
``extra_data.status`` tells the instructor which results need a re-grade before publishing.
"""

from __future__ import annotations

from typing import Any

from grader.models import CriterionStatus, GradeReport
from grader.records import SubmissionRecord
from grader.report.exports.text import criterion_output, safe_text

NOT_YET_VISIBLE = "after_published"


def gradescope_results(record: SubmissionRecord) -> dict[str, Any]:
    """The results of one batch record."""
    extra = {"status": record.status.value, "commit_sha": record.commit_sha,
             "grader_version": record.grader_version,
             "rubric": f"{record.rubric_name} {record.rubric_version}"}
    if record.report is None:
        return could_not_grade_results(record.reason or "unknown reason", extra)
    return report_results(record.report, extra)


def could_not_grade_results(reason: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Results that show no score: one not-yet-visible test explains, for the instructor."""
    message = safe_text(f"Could not grade this submission: {reason}. This is not your score: an "
                        "instructor will re-grade it.")
    return {
        "output": message,
        "output_format": "text",
        "visibility": NOT_YET_VISIBLE,
        "stdout_visibility": "hidden",
        "extra_data": extra,
        "tests": [{"score": 0, "max_score": 0, "status": "failed", "name": "Grading (not your score)",
                   "number": "0.1", "output": message, "output_format": "text", "tags": ["could-not-grade"],
                   "visibility": NOT_YET_VISIBLE}],
    }


def report_results(report: GradeReport, extra: dict[str, Any]) -> dict[str, Any]:
    """Results of a graded report: one test per criterion."""
    tests = []
    for ex_number, exercise in enumerate(report.exercises, 1):
        for number, criterion in enumerate(exercise.criteria, 1):
            ungraded = criterion.status is CriterionStatus.UNGRADED
            tests.append({
                "score": criterion.points or 0,
                "max_score": criterion.max_points,
                "status": "passed" if criterion.status is CriterionStatus.PASSED else "failed",
                "name": safe_text(f"{exercise.exercise_id} {criterion.title}", one_line=True, limit=300),
                "number": f"{ex_number}.{number}",
                "output": criterion_output(criterion),
                "output_format": "text",
                "tags": [exercise.exercise_id, criterion.criterion_id],
                "visibility": NOT_YET_VISIBLE if ungraded or criterion.visibility == "hidden" else "visible",
            })
    summary = (f"{report.points:g}/{report.max_points:g} points, band {report.band}"
               + ("" if report.complete else " (INCOMPLETE: some criteria were not graded; lower bound)"))
    notes = [*report.rule_notes, *report.warnings]
    return {
        "score": report.points,
        "execution_time": round(report.duration_s),
        "output": safe_text("\n".join([summary, *notes])),
        "output_format": "text",
        "stdout_visibility": "hidden",
        "visibility": "visible" if report.complete else NOT_YET_VISIBLE,
        "extra_data": extra,
        "tests": tests,
    }
