"""Gradescope autograder ``results.json`` for one submission (fields: shared/formats/LMS-EXPORTS.md).

One test per rubric criterion, numbered ``<exercise>.<criterion>`` ("1.2"): ``score`` the
criterion's points, ``status`` passed only when every point is earned. Hidden criteria are
``after_published`` (shown once the instructor publishes). An ungraded criterion (the grader
failed) scores 0 *hidden* with an explanation, so students never see a lower bound as their
total; a submission that could not be graded gets score 0, top-level visibility ``hidden`` and
the reason: in both cases an instructor must re-grade before publishing (``extra_data.status``).
"""

from __future__ import annotations

from typing import Any

from grader.batch.record import SubmissionRecord, SubmissionStatus
from grader.models import CriterionStatus
from grader.report.exports.text import criterion_output, safe_text


def gradescope_results(record: SubmissionRecord) -> dict[str, Any]:
    extra = {"status": record.status.value, "commit_sha": record.commit_sha,
             "grader_version": record.grader_version,
             "rubric": f"{record.rubric_name} {record.rubric_version}"}
    report = record.report
    if report is None:
        return {
            "score": 0,
            "output": safe_text(f"Could not grade this submission: {record.reason}. This is not your "
                                "score: an instructor will re-grade it."),
            "output_format": "text",
            "visibility": "hidden",
            "stdout_visibility": "hidden",
            "extra_data": extra,
            "tests": [],
        }
    tests = []
    for ex_number, exercise in enumerate(report.exercises, 1):
        for number, criterion in enumerate(exercise.criteria, 1):
            ungraded = criterion.status is CriterionStatus.UNGRADED
            test = {
                "score": criterion.points or 0,
                "max_score": criterion.max_points,
                "status": "passed" if criterion.status is CriterionStatus.PASSED else "failed",
                "name": safe_text(f"{exercise.exercise_id} {criterion.title}", one_line=True, limit=300),
                "number": f"{ex_number}.{number}",
                "output": criterion_output(criterion),
                "output_format": "text",
                "tags": [exercise.exercise_id, criterion.criterion_id],
                "visibility": ("hidden" if ungraded
                               else "after_published" if criterion.visibility == "hidden" else "visible"),
            }
            tests.append(test)
    summary = (f"{report.points:g}/{report.max_points:g} points, band {report.band}"
               + ("" if report.complete else " (INCOMPLETE: some criteria were not graded; lower bound)"))
    notes = [*report.rule_notes, *report.warnings]
    return {
        "score": report.points,
        "execution_time": round(report.duration_s),
        "output": safe_text("\n".join([summary, *notes])),
        "output_format": "text",
        "stdout_visibility": "hidden",
        "visibility": "visible" if record.status is SubmissionStatus.GRADED else "hidden",
        "extra_data": extra,
        "tests": tests,
    }
