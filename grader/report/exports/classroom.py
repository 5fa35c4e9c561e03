"""GitHub Classroom's autograding result for one report (shared/formats/LMS-EXPORTS.md).

Classroom's reporter reads, from each grading step's output, base64-encoded JSON ``{"version":
1, "status", "max_score", "tests": [{"name", "status", "score", "message", "execution_time"}]}``
and shows ``Points X/Y``. This is that JSON (the workflow base64-encodes it): one test per
criterion as the report's audience sees it. ``status`` is ``error`` when the grading is
incomplete (the grader failed on a criterion: not the student's fault), else ``pass`` when the
report passes and ``fail`` when it does not; an ungraded criterion's test is ``error``.
"""

from __future__ import annotations

from typing import Any

from grader.models import CriterionScore, CriterionStatus, GradeReport
from grader.report.exports.text import safe_text


def classroom_results(report: GradeReport) -> dict[str, Any]:
    """The reporter's JSON for ``report`` (already redacted for its audience)."""
    tests = [_test(exercise.exercise_id, criterion)
             for exercise in report.exercises for criterion in exercise.criteria]
    status = "error" if not report.complete else "pass" if report.passed else "fail"
    return {"version": 1, "status": status, "max_score": report.max_points, "tests": tests}


def _test(exercise_id: str, criterion: CriterionScore) -> dict[str, Any]:
    status = {CriterionStatus.PASSED: "pass", CriterionStatus.UNGRADED: "error"}.get(criterion.status, "fail")
    seconds = sum(check.duration_s for check in criterion.checks)
    message = ("not graded: the grader failed on this criterion (not your fault)"
               if criterion.status is CriterionStatus.UNGRADED else "; ".join(criterion.reasons))
    return {
        "name": safe_text(f"{exercise_id} {criterion.title}", one_line=True, limit=300),
        "status": status,
        "score": criterion.points or 0,
        "message": safe_text(message, one_line=True, limit=1000),
        # As Classroom's own runners write it: seconds, two decimals, with the unit.
        "execution_time": f"{seconds:.2f}s",
    }
