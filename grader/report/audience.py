"""Who a report is for: instructors see everything, students see no hidden details nor diff.

The redaction happens once, on the model, so no renderer can leak what it was not given.
"""

from __future__ import annotations

import enum

from grader.models import CriterionScore, GradeReport


class Audience(enum.StrEnum):
    INSTRUCTOR = "instructor"
    STUDENT = "student"


HIDDEN_TITLE = "hidden criterion"


def for_audience(report: GradeReport, audience: Audience) -> GradeReport:
    """``report`` as ``audience`` may see it."""
    if audience is Audience.INSTRUCTOR:
        return report
    exercises = tuple(
        ex.model_copy(update={"criteria": tuple(_redact(c, f"{ex.exercise_id}.hidden{n}")
                                                for n, c in enumerate(ex.criteria, 1))})
        for ex in report.exercises
    )
    # The diff carries the reference-similarity figures, and the review list names hidden
    # checks: instructors only (a student sees a flaky check's status on its criterion).
    return report.model_copy(update={"exercises": exercises, "diff": None, "needs_review": ()})


def _redact(criterion: CriterionScore, anonymous_id: str) -> CriterionScore:
    if criterion.visibility != "hidden":
        return criterion
    # Points stay (the student may know how much is at stake); what is checked does not.
    return criterion.model_copy(update={
        "criterion_id": anonymous_id, "title": HIDDEN_TITLE, "reasons": (), "hint": None, "checks": (),
    })
