"""What a scenario is given (a way to open fresh stacks, the checkout, its settings) and how it
gets an API that serves, learning once per grading when the API cannot start at all."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from grader.catalogue import ScenarioSettings
from grader.clock import GradingClock
from grader.models import Evidence
from grader.stack.base import ApiProcess, JournalEntry, Stack

from .http import Observed, Probe
from .recorder import FailureCause, Results, decisive, marginal

if TYPE_CHECKING:  # declared.py runs on this module: only the annotation needs it
    from .declared import DeclaredCheck

# A first generate pays for an API's lazy set-up (imports, clients): beside another grading on two
# cores it has taken over 45 s. Waiting it out keeps that request from reaching the LLM late,
# in the middle of a scripted sequence meant for the next one.
_WARM_UP_TIMEOUT_S = 180.0
_GATE_POLL_S = 1.0


@dataclass(frozen=True)
class StartFailure:
    """Why the API did not come to serve, as every check that needed it says it; ``learned``:
    the same whatever the stack and the load (it exited), so one start answers for all."""

    reason: str
    evidence: Evidence
    failure: FailureCause
    learned: bool = True


class StartGate:
    """Learns once per grading whether the API starts at all with the contract's environment.

    The first such start goes ahead alone while the others wait for its outcome. If it served,
    every start proceeds at once from then on. If it exited (an import error, a missing module,
    an exit at once, a sandbox limit: the same whatever the stack), that outcome answers every
    later start with that environment, re-runs included: no API is started twice. One still
    starting when the start-up limit passed proves nothing alone (load slows a start): one more
    caller tries, alone again, and if that start times out too, the two answer every later
    start (the second start is the first one's fairness re-run).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = threading.Event()
        self._probing = False
        self._cannot: StartFailure | None = None
        self._timed_out_once = False

    def learned(self) -> StartFailure | None:
        """Why the API cannot start with the contract's environment, once learned; else None."""
        with self._lock:
            return None if self._cannot is None else _learned(self._cannot)

    def start(self, attempt: Callable[[], "Serving | StartFailure"],
              check_time: Callable[[], None] = lambda: None) -> "Serving | StartFailure":
        while True:
            with self._lock:
                if self._cannot is not None:
                    return _learned(self._cannot)
                if self._settled.is_set():
                    break
                probe = not self._probing
                self._probing = True
            if probe:
                return self._probe(attempt)
            self._await_prober(check_time)
        return attempt()

    def _await_prober(self, check_time: Callable[[], None]) -> None:
        """Until the gate settles, or its prober ends having learned nothing (one waiter probes next)."""
        while not self._settled.wait(_GATE_POLL_S):
            check_time()
            with self._lock:
                if not self._probing:
                    return

    def _probe(self, attempt: Callable[[], "Serving | StartFailure"]) -> "Serving | StartFailure":
        try:
            outcome = attempt()
        except BaseException:  # e.g. its run's time limit: nothing learned, let another try
            with self._lock:
                self._probing = False
            raise
        with self._lock:
            self._probing = False
            if not isinstance(outcome, StartFailure):
                self._settled.set()
            elif outcome.learned:
                self._cannot = outcome
                self._settled.set()
            elif not self._timed_out_once:
                self._timed_out_once = True
            else:
                self._cannot = outcome = _timed_out_twice(outcome)
                self._settled.set()
        return outcome


def _timed_out_twice(second: StartFailure) -> StartFailure:
    """``second``, a timed-out start that followed another, as what the grading learned."""
    return StartFailure(f"{second.reason}, in two starts one after the other", second.evidence,
                        decisive("a second start, alone and given the same time, did not answer either: "
                                 "the first start's fairness re-run"))


def _learned(first: StartFailure) -> StartFailure:
    """``first`` as a later start reports it: the same reason and output, said to be learned."""
    evidence = Evidence(kind="log", summary="start-up output, learned from the grading's earlier start of the API "
                                            "with the contract's environment (not started again)",
                        detail=first.evidence.detail)
    return StartFailure(first.reason, evidence, first.failure)


@dataclass(frozen=True)
class ScenarioContext:
    exercise: str
    checkout: Path  # the submission's repository root, for the static checks
    open_stack: Callable[[str], AbstractContextManager[Stack]]
    settings: ScenarioSettings  # the scenario's own ``Settings``, the rubric's values applied
    clock: GradingClock | None = None  # the grading's wall-time limits; None: none (the runner's own tests)
    check_time: Callable[[], None] = lambda: None  # raises TimeLimitHit once the run's limit has passed
    starts: StartGate = field(default_factory=StartGate)  # one per grading, shared by its scenarios
    declared: tuple[tuple[str, DeclaredCheck], ...] = ()  # the rubric's checks of this exercise, by id

    @property
    def startup_s(self) -> float:
        """How long an API may take to answer HTTP once spawned (the limits' ``startup_s``)."""
        return self.clock.startup_s if self.clock is not None else GradingClock.DEFAULT_STARTUP_S


@dataclass
class Serving:
    """An API that answered HTTP, with a probe bound to it; closing it kills the API."""

    api: ApiProcess
    probe: Probe

    def __enter__(self) -> "Serving":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.probe.close()
        self.api.kill()


def start_serving(ctx: ScenarioContext, stack: Stack,
                  env: Mapping[str, str | None] | None = None) -> Serving | StartFailure:
    """Start the API and wait for it to answer; the contract's environment (``env`` empty) goes
    through the grading's ``StartGate``, so an API that cannot start is started once."""
    if not env:
        return ctx.starts.start(lambda: _start(ctx, stack, None), ctx.check_time)
    return _start(ctx, stack, env)


def _start(ctx: ScenarioContext, stack: Stack, env: Mapping[str, str | None] | None) -> Serving | StartFailure:
    api = stack.start_api(env)
    timeout = ctx.startup_s
    if api.wait_until_serving(timeout):
        return Serving(api, Probe(api.url, ctx.check_time))
    # Read before the kill: once killed, every API "exited with code -9".
    still_running, reason = api.exit_code is None, api.startup_failure_reason()
    api.kill()
    ctx.check_time()  # killed by the run's time limit: no verdict on the submission, nothing learned
    tail = "\n".join(line.text for line in api.output()[-25:])
    evidence = Evidence(kind="log", summary="start-up output", detail=tail)
    if still_running:
        return StartFailure(f"the API did not answer HTTP within {timeout:.0f}s ({reason})", evidence,
                            marginal("still starting when the start-up limit passed: load slows a start"),
                            learned=False)
    return StartFailure(f"the API did not start: {reason}", evidence,
                        decisive("an API that exits at start-up with the contract's environment fails the same "
                                 "way on any machine"))


def serve(ctx: ScenarioContext, stack: Stack, results: Results, group: str,
          env: Mapping[str, str | None] | None = None) -> Serving | None:
    """An API that serves, or None once every undecided check of ``group`` (and every check that
    depends on one) failed with why it did not."""
    outcome = start_serving(ctx, stack, env)
    if isinstance(outcome, StartFailure):
        results.fail_all(results.group(group), outcome.reason, [outcome.evidence], failure=outcome.failure)
        return None
    return outcome


def upstream_calls(stack: Stack) -> list[JournalEntry]:
    """The chat completions the LLM stand-in received (health pings and model lists excluded)."""
    return [entry for entry in stack.llm.journal() if entry.path.rstrip("/").endswith("chat/completions")]


def warm_up(serving: Serving, token: str | None) -> Observed:
    """One ordinary generate, answered (or given up on) before a timed probe is scripted."""
    return serving.probe.generate(token, timeout=_WARM_UP_TIMEOUT_S)


def upstream_calls_for(stack: Stack, prompt: str) -> list[JournalEntry]:
    """The chat completions that carry ``prompt``: one request's calls, retries included."""
    return [entry for entry in upstream_calls(stack) if prompt in entry.body]
