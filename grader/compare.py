"""What changed between two gradings of the same students: per student, the total, band and
pass, and per criterion its status, points and reasons.

What a grading records about its run (dates, durations, evidence, isolation lines, warnings)
is not compared: two runs of the same grader always differ there. A report that could not be
graded (a batch record with status ``error``) has no points; going to or from it is a change.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from grader.errors import UsageError
from grader.models import CriterionScore, GradeReport
from grader.records import SUBMISSIONS_DIR, read_records

REPORT_KEY = "report"  # the one "student" of a grading given as a report JSON


class Movement(enum.StrEnum):
    IMPROVED = "improved"  # more points
    WORSENED = "worsened"  # fewer points
    CHANGED = "changed"  # same points, something else moved (a reason, a band, could not grade...)
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class CriterionChange:
    criterion_id: str
    before: CriterionScore | None  # None: the criterion is not in that grading
    after: CriterionScore | None

    def describe(self) -> str:
        """One line: ``ex1.cors: failed 0/2 -> passed 2/2 (reason: ...)``."""
        parts = [f"{_criterion(self.before)} -> {_criterion(self.after)}"]
        if self.before and self.after and self.before.reasons != self.after.reasons:
            parts.append(f"reason: {'; '.join(self.after.reasons) or 'none'}")
        return f"{self.criterion_id}: {' '.join(parts)}"


def _criterion(score: CriterionScore | None) -> str:
    if score is None:
        return "absent"
    points = "?" if score.points is None else f"{score.points:g}"
    return f"{score.status.value} {points}/{score.max_points:g}"


@dataclass(frozen=True)
class StudentChange:
    student_id: str
    present: tuple[bool, bool]  # whether the student is in the first / second grading
    before: GradeReport | None  # None: not in the grading, or could not be graded
    after: GradeReport | None
    criteria: tuple[CriterionChange, ...]

    @property
    def headline_changed(self) -> bool:
        """Whether the total, band or pass moved (or whether it could be graded at all)."""
        return _headline(self.before) != _headline(self.after) or self.present[0] != self.present[1]

    @property
    def movement(self) -> Movement:
        before, after = self.before, self.after
        if before is not None and after is not None and before.points != after.points:
            return Movement.IMPROVED if after.points > before.points else Movement.WORSENED
        return Movement.CHANGED if self.headline_changed or self.criteria else Movement.UNCHANGED

    def headline(self) -> tuple[str, str]:
        """Before and after, each as ``points/max band B, passed|not passed`` (or why there is none)."""
        return (_summary(self.before, self.present[0]), _summary(self.after, self.present[1]))


def _headline(report: GradeReport | None) -> tuple[float, float, str, bool] | None:
    return None if report is None else (report.points, report.max_points, report.band, report.passed)


def _summary(report: GradeReport | None, present: bool) -> str:
    if not present:
        return "absent"
    if report is None:
        return "could not grade"
    return f"{report.points:g}/{report.max_points:g} band {report.band}, {'passed' if report.passed else 'not passed'}"


def _criteria(report: GradeReport | None) -> dict[str, CriterionScore]:
    if report is None:
        return {}
    return {c.criterion_id: c for ex in report.exercises for c in ex.criteria}


def compare_one(student_id: str, before: GradeReport | None, after: GradeReport | None,
                present: tuple[bool, bool] = (True, True)) -> StudentChange:
    old, new = _criteria(before), _criteria(after)
    changed = tuple(
        CriterionChange(cid, old.get(cid), new.get(cid))
        for cid in [*old, *(cid for cid in new if cid not in old)]
        if _decided(old.get(cid)) != _decided(new.get(cid))
    )
    return StudentChange(student_id, present, before, after, changed)


def _decided(score: CriterionScore | None) -> tuple[object, ...] | None:
    return None if score is None else (score.status, score.points, score.max_points, score.reasons)


def compare(before: Mapping[str, GradeReport | None], after: Mapping[str, GradeReport | None]) -> list[StudentChange]:
    """Every student of either grading, sorted by id; a missing key is a student not graded there."""
    return [compare_one(sid, before.get(sid), after.get(sid), (sid in before, sid in after))
            for sid in sorted({*before, *after})]


def counts(changes: list[StudentChange]) -> dict[Movement, int]:
    return {movement: sum(change.movement is movement for change in changes) for movement in Movement}


def load_grading(path: Path) -> tuple[str, dict[str, GradeReport | None]]:
    """A grading to compare: ``("batch", student -> report)`` from a batch folder's records, or
    ``("report", {REPORT_KEY: report})`` from one report JSON."""
    if path.is_dir():
        if not (path / SUBMISSIONS_DIR).is_dir():
            raise UsageError(f"{path}: not a batch folder (no {SUBMISSIONS_DIR}/ in it)")
        return "batch", {record.student_id: record.report for record in read_records([path])}
    try:
        return "report", {REPORT_KEY: GradeReport.model_validate_json(path.read_bytes())}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValidationError, ValueError):
        raise UsageError(f"{path}: not a grade report JSON (grade -f json) nor a batch folder") from None
