"""PrairieLearn external-grading ``results.json`` for one submission (shared/formats/LMS-EXPORTS.md).

PrairieLearn shows everything to the student, so the report is first redacted for the
student audience (hidden criteria anonymised, no reference diff). ``score`` is points/max in
[0, 1]; one test per criterion with ``points``/``max_points``. A submission that could not be
graded, or whose grading is incomplete (the grader failed on a criterion), is
``gradable: false`` with ``format_errors`` saying why: no points lost, no attempt used.
"""

from __future__ import annotations

from typing import Any

from grader.batch.record import SubmissionRecord
from grader.report.audience import Audience, for_audience
from grader.report.exports.text import criterion_output, safe_text


def prairielearn_results(record: SubmissionRecord) -> dict[str, Any]:
    if record.report is None:
        reason = safe_text(f"could not grade: {record.reason}", one_line=True, limit=1000)
        return {"gradable": False, "score": 0, "format_errors": [reason],
                "message": "The grader could not grade this submission (not your fault); no attempt was used."}
    report = for_audience(record.report, Audience.STUDENT)
    tests = [
        {
            "name": safe_text(f"{exercise.exercise_id} {criterion.title}", one_line=True, limit=300),
            "description": safe_text(exercise.title, one_line=True, limit=300),
            "points": criterion.points or 0,
            "max_points": criterion.max_points,
            "message": safe_text("; ".join(criterion.reasons), one_line=True, limit=1000),
            "output": criterion_output(criterion),
        }
        for exercise in report.exercises for criterion in exercise.criteria
    ]
    score = round(report.points / report.max_points, 4) if report.max_points else 0
    result: dict[str, Any] = {
        "gradable": report.complete,
        "score": min(1.0, max(0.0, score)),
        "message": safe_text(f"{report.points:g}/{report.max_points:g} points, band {report.band}",
                             one_line=True),
        "output": safe_text("\n".join([*report.rule_notes, *report.warnings])),
        "tests": tests,
    }
    if not report.complete:
        result["format_errors"] = ["the grader failed on some criteria (not your fault): "
                                   "this grading is incomplete and an instructor will re-grade it"]
    return result
