"""What a report opens with, the same in every format: the verdict, a bar per exercise, and
"fix these first" (the criteria that lost points, largest loss first, one line each).

Pure data from a ``GradeReport`` already redacted for its audience; each renderer draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.models import CriterionStatus, GradeReport
from grader.report.audience import HIDDEN_TITLE
from grader.report.sanitize import clean

BAR_WIDTH = 20  # characters of a text bar (terminal, Markdown)
REASON_LIMIT = 200  # characters of a "fix these first" line: the detail below has the rest


@dataclass(frozen=True)
class ExerciseBar:
    exercise_id: str
    title: str
    points: float
    max_points: float
    complete: bool  # False: some criterion ungraded, the points are a lower bound

    @property
    def fraction(self) -> float:
        return min(1.0, self.points / self.max_points) if self.max_points else 0.0

    def text_bar(self) -> str:
        """The bar as block characters, ``BAR_WIDTH`` wide."""
        filled = round(self.fraction * BAR_WIDTH)
        return "█" * filled + "░" * (BAR_WIDTH - filled)


@dataclass(frozen=True)
class FixFirst:
    """A criterion that lost points and the one line that says why."""

    exercise_id: str
    title: str
    lost: float
    max_points: float
    reason: str


def verdict_line(report: GradeReport) -> str:
    """``Total 19/100, band fail, NOT PASSED`` (the last line ``grade -q`` prints, too)."""
    lower_bound = "" if report.complete else " (lower bound, incomplete)"
    return (f"Total {report.points:g}/{report.max_points:g}{lower_bound}, band {report.band}, "
            f"{'PASSED' if report.passed else 'NOT PASSED'}")


def exercise_bars(report: GradeReport) -> list[ExerciseBar]:
    return [ExerciseBar(ex.exercise_id, ex.title, ex.points, ex.max_points, ex.complete) for ex in report.exercises]


def fix_first(report: GradeReport) -> list[FixFirst]:
    """Graded criteria that lost points, largest loss first (rubric order among equals).

    Ungraded criteria are left out: the grader failed there, nothing is the student's to fix.
    """
    items = []
    for exercise in report.exercises:
        for criterion in exercise.criteria:
            if criterion.status in (CriterionStatus.PASSED, CriterionStatus.UNGRADED) or criterion.points is None:
                continue
            reason = (clean(criterion.reasons[0], one_line=True) if criterion.reasons
                      else "its details are not shown to students" if criterion.title == HIDDEN_TITLE
                      else "no reason recorded")
            if len(reason) > REASON_LIMIT:
                reason = reason[:REASON_LIMIT - 1] + "…"
            items.append(FixFirst(exercise.exercise_id, criterion.title,
                                  round(criterion.max_points - criterion.points, 2), criterion.max_points, reason))
    return sorted(items, key=lambda item: -item.lost)
