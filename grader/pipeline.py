"""The one place that knows the order: rubric -> fetch -> diff -> stack -> scenarios -> score.

An ExitStack owns every directory and process a grading creates, so nothing outlives it,
whether the grading ends, fails or is interrupted.
"""

from __future__ import annotations

import enum
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from grader import __version__
from grader.cache import default_cache_root
from grader.checkout import remove_tree
from grader.checks import EXERCISES
from grader.clock import GradingClock
from grader.diff import diff_submission
from grader.errors import UsageError
from grader.fetch import fetch, snapshot_worktree, symlinks_escaping
from grader.identity import grader_identity
from grader.models import CheckResult, GradeReport
from grader.rubric import Rubric, load_rubric
from grader.sandbox import Isolation, Limits, detect
from grader.scenarios.runner import run_on_backend
from grader.scoring import score
from grader.stack_phase import grade_dynamic

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUBRIC = PROJECT_ROOT / "rubrics" / "llmops-exam.yaml"
REFERENCE_DIR = PROJECT_ROOT / "reference_solution"


class Backend(enum.StrEnum):
    """Where a grading's stack runs (``--backend``)."""

    LOCAL = "local"  # processes on 127.0.0.1, no Docker
    COMPOSE = "compose"  # containers on a Docker engine
    AUTO = "auto"  # compose when an engine and a Compose CLI answer, else local


BACKENDS = tuple(backend.value for backend in Backend)


class Progress(Protocol):
    """What a grading tells its caller while it runs (the CLI draws it; tests ignore it)."""

    def stage(self, message: str) -> None: ...

    def scenario_started(self, exercise: str) -> None: ...

    def scenario_finished(self, exercise: str, checks: list[CheckResult]) -> None: ...


class SilentProgress:
    def stage(self, message: str) -> None:
        pass

    def scenario_started(self, exercise: str) -> None:
        pass

    def scenario_finished(self, exercise: str, checks: list[CheckResult]) -> None:
        pass


@dataclass(frozen=True)
class GradeRequest:
    source: str
    ref: str | None = None
    deadline: datetime | None = None
    rubric_path: Path = DEFAULT_RUBRIC
    backend: str = "local"
    only: frozenset[str] | None = None
    worktree: bool = False  # grade a working tree as it is (student self-check)
    with_diff: bool = True
    cache_root: Path = field(default_factory=default_cache_root)
    require_sandbox: bool = False  # --require-sandbox: refuse to grade without every protection


def validate(request: GradeRequest) -> Rubric:
    """Everything that can be checked before cloning or starting anything."""
    if request.backend not in BACKENDS:
        raise UsageError(f"unknown backend {request.backend!r}; available: {', '.join(BACKENDS)}")
    if request.only is not None:
        unknown = sorted(set(request.only) - set(EXERCISES))
        if unknown:
            raise UsageError(f"--only: unknown exercise(s) {', '.join(unknown)}; known: {', '.join(EXERCISES)}")
    return load_rubric(request.rubric_path)


def grade(request: GradeRequest, progress: Progress | None = None) -> GradeReport:
    """Grade one submission; raises GraderError (could not grade), never a silent 0."""
    progress = progress or SilentProgress()
    started = time.monotonic()
    rubric = validate(request)
    backend, why = choose_backend(request.backend)
    progress.stage(f"backend: {backend} ({why})")
    # The local sandbox is detected (and --require-sandbox refused) before anything is fetched;
    # on compose, every process of the submission runs in a container.
    limits = Limits.from_settings(rubric.limits)
    clock = GradingClock.starting_now(limits.scenario_s, limits.submission_s, limits.startup_s)
    isolation = detect(limits, require=request.require_sandbox) if backend == "local" else Isolation(limits=limits)
    exercises = [e for e in EXERCISES if request.only is None or e in request.only]
    with ExitStack() as owned:
        workdir = Path(tempfile.mkdtemp(prefix="grade-"))
        owned.callback(remove_tree, workdir)  # however deep the submission's tree
        checkout = workdir / "submission"
        progress.stage(f"fetching {request.source}")
        submission = (snapshot_worktree(Path(request.source), checkout) if request.worktree
                      else fetch(request.source, checkout, ref=request.ref, deadline=request.deadline))
        warnings = _warnings(checkout)
        diff = None
        if request.with_diff:
            starter = PROJECT_ROOT / rubric.starter if rubric.starter else None
            diff = diff_submission(checkout, REFERENCE_DIR, starter,
                                   {ex_id: exercise.files for ex_id, exercise in rubric.exercises.items()})
        for exercise in exercises:
            progress.scenario_started(exercise)
        settings = {exercise: rubric.exercises[exercise].settings for exercise in exercises}
        if backend == "compose":
            # Imported here: the Docker SDK, for compose gradings only.
            from grader.stack.compose.backend import ISOLATION_LINES, ComposeBackend

            with ComposeBackend(checkout, workdir, isolation.limits, progress.stage) as containers:
                progress.stage("running the scenarios, one compose project per stack")
                checks = run_on_backend(containers.open_stack, checkout, exercises, settings, clock,
                                        progress.scenario_finished, containers.abort, declared=rubric.checks)
            protections = (*ISOLATION_LINES, f"limits: {isolation.limits.summary()}")
        else:
            # Install outside (it needs the index), scenarios in their own network namespace.
            checks = grade_dynamic(checkout, workdir, request.cache_root, exercises, settings, clock,
                                   isolation, progress.scenario_finished, progress.stage, declared=rubric.checks)
            protections = isolation.lines()
    return score(
        rubric,
        checks,
        submission,
        grader_version=__version__,
        graded_at=datetime.now(timezone.utc),
        identity=grader_identity(rubric),
        diff=diff,
        warnings=warnings,
        isolation=(f"backend: {backend} ({why})", *protections),
        duration_s=round(time.monotonic() - started, 1),
        only=set(exercises) if request.only is not None else None,
    )


def choose_backend(requested: str) -> tuple[str, str]:
    """The backend to grade on and why: ``auto`` picks compose when a Docker engine and a
    Compose CLI answer, else local."""
    if requested != "auto":
        return requested, "asked for"
    from grader.stack.compose.engine import engine_problem

    problem = engine_problem()
    if problem is None:
        return "compose", "auto: a Docker engine and a Compose CLI answer"
    return "local", f"auto: {problem}"


def _warnings(checkout: Path) -> list[str]:
    """What the instructor should look at besides the score (unmerged branches and the
    deadline are rendered from the submission itself)."""
    return [f"symlink {link} points outside the repository: reported, never read"
            for link in symlinks_escaping(checkout)]
