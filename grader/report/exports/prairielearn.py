"""PrairieLearn external-grading ``results.json`` for one submission, and the manual-grading
CSV upload for a batch (shared/formats/LMS-EXPORTS.md).

PrairieLearn shows everything to the student, so the report is first redacted for the
student audience (hidden criteria anonymised, no reference diff). ``score`` is points/max in
[0, 1]; one test per criterion with ``points``/``max_points``. A submission that could not be
graded, or whose grading is incomplete (the grader failed on a criterion), is
``gradable: false`` with ``format_errors`` saying why: no points lost, no attempt used.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from grader.records import SubmissionRecord
from grader.report.audience import Audience, for_audience
from grader.report.exports.text import criterion_output, safe_text
from grader.report.gradebook import safe_cell


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


CSV_COLUMNS = ("uid", "instance", "qid", "score_perc", "feedback")


def render_prairielearn_csv(records: list[SubmissionRecord], instance: int = 1) -> str:
    """PrairieLearn's manual-grading upload: one row per student and exercise (``qid`` = the
    exercise id, e.g. ``ex3``; ``uid`` = the roster's student id), ``score_perc`` 0-100 and the
    student-visible ``feedback``. For grading that cannot run in PrairieLearn's networkless,
    600-second containers. A submission that could not be graded, and an exercise with an
    ungraded criterion, get no row: uploading them would record a score that is not the student's.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in sorted(records, key=lambda r: r.student_id):
        if record.report is None:
            continue
        for exercise in for_audience(record.report, Audience.STUDENT).exercises:
            if not exercise.complete:
                continue
            percent = round(100 * exercise.points / exercise.max_points, 2) if exercise.max_points else 0
            lost = [f"{c.title}: {'; '.join(c.reasons) or 'details not shown'}" for c in exercise.criteria
                    if c.points is not None and c.points < c.max_points]
            feedback = f"{exercise.points:g}/{exercise.max_points:g}" + (f". Lost: {' | '.join(lost)}" if lost else "")
            writer.writerow([safe_cell(record.student_id), instance, safe_cell(exercise.exercise_id),
                             safe_cell(percent), safe_cell(safe_text(feedback, one_line=True, limit=2000))])
    return buffer.getvalue()
