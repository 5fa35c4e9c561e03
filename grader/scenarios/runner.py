"""Runs the scenarios concurrently; whatever happens, every check of every exercise gets a verdict."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from grader.clock import GradingClock
from grader.models import CheckResult, CheckStatus, Evidence, Failure
from grader.stack.base import Stack, SubmissionUnrunnable

from . import SCENARIOS, scenario_settings
from .context import ScenarioContext, StartGate
from .deadline import RunDeadline, TimeLimitHit
from .declared import DeclaredCheck, exercise_of, run_declared
from .recorder import Results, decisive
from .reproduce import with_reproduction


def run_scenario(ctx: ScenarioContext) -> list[CheckResult]:
    """One exercise's checks (``_verdicts``), each failed one that a student can replay on their
    own stack carrying the recipe (``reproduce``)."""
    return with_reproduction(_verdicts(ctx), ctx.settings)


def _verdicts(ctx: ScenarioContext) -> list[CheckResult]:
    """One exercise's checks: probes' failures are evidence, the grader's own are ``error``.

    A scenario that ends with an ``error`` (the grader or the machine failed) is run once
    more in fresh stacks before the error is reported. Then the fairness rule: a scenario
    with a *marginal* failure (one that load could have decided) is run once more in fresh
    stacks, and a marginal failure that passes there is ``flaky`` (see ``rerun_verdict``).
    Decisive failures stand as observed and never cost a re-run.
    """
    checks, unrunnable = _attempt(ctx)
    if any(check.status is CheckStatus.ERROR for check in checks):
        checks, unrunnable = _attempt(ctx)
    # An install or build the submission broke fails the same way every time: no re-run.
    if unrunnable or not any(_rerun_worthy(check) for check in checks):
        return checks
    again = {check.check_id: check for check in _attempt(ctx)[0]}
    return [rerun_verdict(check, again[check.check_id]) for check in checks]


def _rerun_worthy(check: CheckResult) -> bool:
    """A marginal failure (static checks are decisive by nature: the code says so)."""
    return check.status in (CheckStatus.FAILED, CheckStatus.NOT_GRADABLE) and check.failure is Failure.MARGINAL


def rerun_verdict(first: CheckResult, rerun: CheckResult) -> CheckResult:
    """The fairness rule: the verdict of a check given its first run and its re-run.

    A pass stands, and so does a decisive failure. A marginal failure (or ``not_gradable``)
    that passes when re-run is ``flaky``: credited, since the submission did it and the failure
    did not reproduce, and listed for a human look; one that does not pass again stands,
    noting the re-run. An ``error`` gives way to the re-run's verdict.
    """
    if first.status is CheckStatus.ERROR:
        return rerun
    if not _rerun_worthy(first):
        return first
    if rerun.status is CheckStatus.PASSED:
        return first.model_copy(update={
            "status": CheckStatus.FLAKY,
            "reason": f"failed, then passed when re-run in a fresh stack (first run: {first.reason})",
            "evidence": (*first.evidence, Evidence(kind="note", summary="re-run in a fresh stack: passed"),
                         *rerun.evidence),
            "duration_s": round(first.duration_s + rerun.duration_s, 3),
        })
    note = Evidence(kind="note", summary=f"re-run in a fresh stack: {rerun.status.value} again: {rerun.reason}")
    return first.model_copy(update={"evidence": (*first.evidence, note)})


def _attempt(ctx: ScenarioContext) -> tuple[list[CheckResult], bool]:
    """One run of the scenario in fresh stacks, within its wall-time limit, and whether the
    submission could not even run."""
    declared = tuple(check.spec(check_id) for check_id, check in ctx.declared)
    results = Results(ctx.exercise, SCENARIOS[ctx.exercise].CHECKS + declared)
    if ctx.clock is None:
        return _run(ctx, results)
    with RunDeadline(ctx.clock, results) as deadline:
        return _run(replace(ctx, open_stack=deadline.guard(ctx.open_stack), check_time=deadline.check), results)


def _run(ctx: ScenarioContext, results: Results) -> tuple[list[CheckResult], bool]:
    crash: BaseException | None = None
    unrunnable = False
    try:
        SCENARIOS[ctx.exercise].run(ctx, results)
        for check_id, check in ctx.declared:
            run_declared(ctx, results, check_id, check)
    except SubmissionUnrunnable as exc:
        unrunnable = True
        results.fail_all(results.undecided(), str(exc),
                         failure=decisive("a submission that cannot install or build fails the same way every time"))
    except TimeLimitHit:
        pass  # every undecided check already failed, naming the limit
    except Exception as exc:  # noqa: BLE001 - a grader bug must become "error", never a lost grading
        crash = exc
    # Once a limit is hit, the run's APIs are killed under it: what breaks then is no verdict.
    return results.finish(None if results.stopped else crash), unrunnable


def run_scenarios(contexts: Iterable[ScenarioContext],
                  on_finished: Callable[[str, list[CheckResult]], None] = lambda exercise, checks: None,
                  abort: Callable[[], None] = lambda: None) -> dict[str, CheckResult]:
    """All scenarios at once (each owns its stacks), keyed by check id.

    On an interrupt, ``abort`` runs before waiting for the scenarios' threads (which cannot be
    interrupted): it tears their stacks down so they end soon, and nothing waits on them.
    """
    contexts = list(contexts)
    checks: dict[str, CheckResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(contexts)), thread_name_prefix="scenario") as pool:
        futures = {pool.submit(run_scenario, ctx): ctx.exercise for ctx in contexts}
        try:
            for future in as_completed(futures):
                exercise = futures[future]
                results = future.result()
                on_finished(exercise, results)
                checks.update({result.check_id: result for result in results})
        except BaseException:
            abort()
            raise
    return checks


def run_on_backend(open_stack: Callable[[str], AbstractContextManager[Stack]], checkout: Path,
                   exercises: Sequence[str], settings: Mapping[str, Mapping[str, float]], clock: GradingClock,
                   on_finished: Callable[[str, list[CheckResult]], None] = lambda exercise, checks: None,
                   abort: Callable[[], None] = lambda: None,
                   declared: Mapping[str, DeclaredCheck] | None = None) -> dict[str, CheckResult]:
    """The scenarios of ``exercises``, each opening its stacks with ``open_stack`` (any backend's),
    with the rubric's ``declared`` checks of each exercise."""
    starts = StartGate()  # one per grading: an API that cannot start is learned once
    declared = declared or {}
    contexts = [ScenarioContext(exercise=exercise, checkout=checkout, open_stack=open_stack,
                                settings=scenario_settings(exercise, settings.get(exercise, {})),
                                clock=clock, starts=starts,
                                declared=tuple((check_id, check) for check_id, check in declared.items()
                                               if exercise_of(check_id) == exercise))
                for exercise in exercises]
    return run_scenarios(contexts, on_finished, abort)
