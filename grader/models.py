"""Frozen data passed between the grading stages (no I/O, no rendering here).

fetch -> Submission; diff -> DiffReport; scenarios -> CheckResult; scoring -> GradeReport.
Pydantic models, so every report serialises to the versioned JSON schema as it is.
"""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckStatus(enum.StrEnum):
    """Outcome of one check. ``failed`` and ``not_gradable`` cost the student points."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_GRADABLE = "not_gradable"  # a prerequisite of the student's failed (reason says which)
    ERROR = "error"  # the grader or the machine failed: never counted against the student
    # Failed, then passed when re-run in a fresh stack (the fairness rule): credited, since the
    # submission did it once and the failure did not reproduce; listed for a human look.
    FLAKY = "flaky"

    @property
    def credited(self) -> bool:
        """Whether the check earns its points."""
        return self in (CheckStatus.PASSED, CheckStatus.FLAKY)


class Failure(enum.StrEnum):
    """Whether a failure could depend on how loaded the machine was (the fairness rule re-runs
    only those). The check's evidence says why it is one or the other."""

    # A time bound missed by little, a gap near a threshold, no answer where a timeout decided,
    # output cut off or unsettled when judged: a fresh stack may see otherwise.
    MARGINAL = "marginal"
    # A wrong status, a wrong upstream call count, a refusal that never happened, a missing
    # header, an API that cannot start: no amount of load makes it otherwise.
    DECISIVE = "decisive"


# The evidence of a failed check that tells the student how to replay it on their own stack
# (grader/scenarios/reproduce.py): its detail is commands to paste.
REPRODUCE = "reproduce"


class Evidence(Frozen):
    """One observation that decided a check: a request, a log line, a journal entry..."""

    kind: str  # "request", "log", "journal", "exit", "file", "note", REPRODUCE
    summary: str
    detail: str = ""


class CheckResult(Frozen):
    """The verdict of one named check with the evidence behind it."""

    check_id: str  # "ex3.hang_bounded"
    status: CheckStatus
    reason: str  # one line a student can act on
    evidence: tuple[Evidence, ...] = ()
    duration_s: float = 0.0
    failure: Failure | None = None  # failed or not_gradable: could load have decided it?


class UnmergedBranch(Frozen):
    """A branch holding commits that the graded ref lacks (a forgotten merge)."""

    name: str
    commits_ahead: int


class Submission(Frozen):
    """What was graded: where it came from and exactly which commit."""

    source: str  # URL or path as the caller gave it
    commit_sha: str | None  # None for a working tree graded as it is
    ref: str | None
    author_date: datetime | None
    commit_count: int
    deadline: datetime | None = None
    deadline_note: str | None = None
    unmerged_branches: tuple[UnmergedBranch, ...] = ()
    dirty: bool = False


class FileChange(Frozen):
    """One expected file of an exercise compared with the reference solution."""

    path: str
    exists: bool
    state: str  # "added", "changed", "unchanged", "missing" (relative to the starter)
    lines: int
    similarity_to_reference: float | None  # 0..1, None when either side is missing
    near_copy: bool


class ExerciseDiff(Frozen):
    exercise_id: str
    files: tuple[FileChange, ...]


class DiffReport(Frozen):
    """Submission vs reference (and starter); shown to instructors only."""

    exercises: tuple[ExerciseDiff, ...]
    overall_similarity: float
    near_copy_files: tuple[str, ...]


class CriterionStatus(enum.StrEnum):
    PASSED = "passed"
    PARTIAL = "partial"
    FAILED = "failed"
    UNGRADED = "ungraded"  # one of its checks is an ``error``: no points decided


class CriterionScore(Frozen):
    criterion_id: str
    title: str
    visibility: str  # "public" or "hidden"
    max_points: float
    points: float | None  # None when ungraded
    status: CriterionStatus
    reasons: tuple[str, ...]  # why points were lost (empty when all earned)
    hint: str | None
    checks: tuple[CheckResult, ...]


class ExerciseScore(Frozen):
    exercise_id: str
    title: str
    max_points: float
    points: float
    complete: bool  # every criterion graded
    criteria: tuple[CriterionScore, ...]


class GraderIdentity(Frozen):
    """Which grader graded, with which rubric: hashes of what decided the grade
    (``grader.identity`` says exactly what each one covers)."""

    version: str  # the package's
    code: str  # the grader's code
    rubric: str  # the validated rubric, all of it
    settings: str  # the rubric's parts that change what the checks observe (limits, settings...)


class GradeReport(Frozen):
    """Everything a report renders; the JSON output is this model (schema_version pinned)."""

    schema_version: int = 1
    grader_version: str
    identity: GraderIdentity | None = None  # None in reports written before it existed
    rubric_name: str
    graded_at: datetime
    submission: Submission
    exercises: tuple[ExerciseScore, ...]
    points: float
    max_points: float
    complete: bool  # False when any criterion is ungraded: the total is a lower bound
    band: str
    passed: bool
    rule_notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    needs_review: tuple[str, ...] = ()  # what an instructor should look at (flaky checks), one line each
    isolation: tuple[str, ...] = ()
    diff: DiffReport | None = None
    duration_s: float = 0.0
