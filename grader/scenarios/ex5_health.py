"""Exercise 5, health checks: liveness independent of dependencies, readiness that names the one down.

Readiness answers may be cached (up to 30 s): after breaking a dependency the probe waits
until the answer names *that* dependency as down, never for any 503 (CONTRACT.md pitfalls).
Each dependency is broken in its own stack so the three waits overlap.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import Field

from grader import contract
from grader.catalogue import CheckSpec, ScenarioSettings
from grader.models import Failure
from grader.stack.base import Fault, Service

from .context import ScenarioContext, Serving, serve
from .http import Observed
from .polling import Polled, poll_until
from .recorder import NO_ANSWER, WRONG_ANSWER, Check, FailureCause, Results, decisive, marginal

EXERCISE = "ex5"
_NAMES_DOWN = ("ex5.names_qdrant_down", "ex5.names_llm_down", "ex5.names_mlflow_down")
CHECKS = (
    CheckSpec("ex5.liveness_independent", False,
              "/health answers 200 while every dependency is down and readiness says degraded", group="qdrant"),
    CheckSpec("ex5.ready_when_up", False, "/health/detailed answers 200 with per-dependency checks when all are up",
              group="qdrant"),
    CheckSpec("ex5.names_qdrant_down", False, "readiness answers 503 naming Qdrant while Qdrant is down",
              group="qdrant"),
    CheckSpec("ex5.names_llm_down", False, "readiness answers 503 naming the LLM proxy while it is down",
              group="litellm"),
    CheckSpec("ex5.names_mlflow_down", False, "readiness answers 503 naming MLflow while it is down", group="mlflow"),
    CheckSpec("ex5.recovers", False, "readiness is back to 200 once every dependency is back",
              depends_on=_NAMES_DOWN),
)


class Settings(ScenarioSettings):
    # Readiness may be cached up to 30 s (the contract): how long a dependency's fall or return
    # is waited for, readiness asked every ``poll_s``.
    cache_wait_s: float = Field(35, gt=0)
    poll_s: float = Field(1, gt=0)
    # One readiness answer may take this long (it checks the dependencies), liveness this long.
    readiness_timeout_s: float = Field(15, gt=0)
    liveness_timeout_s: float = Field(5, gt=0)

_NO_ROUTE_SEEN = f"no readiness route ({' and '.join(contract.READINESS_PATHS)} answered 404)"
_NO_ROUTE = decisive(f"{_NO_ROUTE_SEEN}, and a route does not appear while the API runs")

_ALIASES = {
    Service.QDRANT: ("qdrant", "vector"),
    Service.LLM: ("litellm", "llm", "openai", "proxy"),
    Service.MLFLOW: ("mlflow", "tracking"),
}
_CHECK_OF = dict(zip((Service.QDRANT, Service.LLM, Service.MLFLOW), _NAMES_DOWN))
_DOWN_WORDS = {"down", "unhealthy", "error", "failed", "fail", "failure", "unreachable", "degraded",
               "unavailable", "critical", "dead", "offline", "ko", "false"}
_UP_WORDS = {"up", "healthy", "ok", "pass", "passed", "alive", "available", "online", "true"}


class Readiness:
    """Finds where a submission serves readiness (path, token needed) and asks it; ``missing``:
    every path the contract names answered 404."""

    def __init__(self, serving: Serving, token: str | None, timeout: float) -> None:
        self.probe = serving.probe
        self.token = token
        self.timeout = timeout
        self.path = contract.READINESS_PATHS[0]
        self.headers: dict[str, str] = {}
        self.missing = True
        for path in contract.READINESS_PATHS:
            observed = self.probe.call("GET", path)
            if observed.status in (401, 403) and token:
                self.headers = {"Authorization": f"Bearer {token}"}
                observed = self.probe.call("GET", path, headers=self.headers)
            if observed.status != 404:
                self.path, self.missing = path, False
                break

    def until(self, satisfied: Callable[[Observed], bool], timeout: float, poll_s: float) -> Polled[Observed]:
        """Readiness asked until ``satisfied``, as ``poll_until``; asked once when there is no
        readiness route: a FastAPI app's routes are all there once it serves, none appears later."""
        return poll_until(self.ask, satisfied, 0.0 if self.missing else timeout, poll_s)

    def ask(self) -> Observed:
        return self.probe.call("GET", self.path, headers=self.headers, timeout=self.timeout)


def dependency_state(body: Any, service: Service) -> bool | None:
    """True (up), False (down) or None (not named) for ``service`` in a readiness body."""
    checks = body
    if isinstance(body, dict):
        for key in ("checks", "dependencies", "services", "components", "details"):
            if isinstance(body.get(key), (dict, list)):
                checks = body[key]
                break
    entries: list[tuple[str, Any]] = []
    if isinstance(checks, dict):
        entries = [(str(name), value) for name, value in checks.items()]
    elif isinstance(checks, list):
        entries = [(str(item.get("name", "")), item) for item in checks if isinstance(item, dict)]
    for name, value in entries:
        if any(alias in name.lower() for alias in _ALIASES[service]):
            return _health_of(value)
    return None


def _health_of(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        return False if word in _DOWN_WORDS else True if word in _UP_WORDS else None
    if isinstance(value, dict):
        for key in ("healthy", "ok", "up", "status", "state", "available"):
            if key in value:
                return _health_of(value[key])
    return None


def run(ctx: ScenarioContext, results: Results) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(_one_dependency, ctx, service, results) for service in _CHECK_OF]
        recoveries = [future.result() for future in futures]
    if any(recovery is None for recovery in recoveries):
        return  # a stack whose API never served has failed ex5.recovers already
    check = Check("ex5.recovers")
    check.extend([recovery.last.evidence() for recovery in recoveries])
    unseen = [recovery.service.value for recovery in recoveries if not recovery.seen_down]
    if unseen:
        # Nothing to recover from: "back to 200" after a failure never seen proves nothing.
        results.not_gradable(check.check_id, f"readiness never named {', '.join(unseen)} as down, so no recovery "
                                             "could be seen", failure=_worst(results, recoveries))
        return
    stuck = [recovery for recovery in recoveries if not recovery.back]
    results.judge(check, not stuck, "readiness back to 200 after each dependency recovered",
                  "readiness did not come back to 200 after "
                  + ", ".join(f"{r.service.value} recovered (last: {r.last.status or r.last.error})" for r in stuck),
                  failure=NO_ANSWER if any(r.last.status is None for r in stuck) else
                  decisive("readiness kept answering otherwise for longer than any cache the contract allows"))


@dataclass(frozen=True)
class _Recovery:
    """One dependency broken then restored: whether readiness named it down, then came back."""

    service: Service
    seen_down: bool
    back: bool
    last: Observed


def _worst(results: Results, recoveries: list[_Recovery]) -> FailureCause:
    """Marginal when any "named down" check that failed was marginal, else decisive."""
    causes = [results.failure_of(_CHECK_OF[r.service]) for r in recoveries if not r.seen_down]
    return next((cause for cause in causes if cause.kind is Failure.MARGINAL), causes[0])


def _one_dependency(ctx: ScenarioContext, service: Service, results: Results) -> _Recovery | None:
    settings: Settings = ctx.settings
    wait, poll_s = settings.cache_wait_s, settings.poll_s
    with ctx.open_stack(f"ex5-{service.value}") as stack:
        serving = serve(ctx, stack, results, service.value)
        if serving is None:
            return None
        with serving:
            token, _ = serving.probe.login()
            readiness = Readiness(serving, token, settings.readiness_timeout_s)
            baseline = readiness.ask()
            if service is Service.QDRANT:
                _ready_when_up(readiness, baseline, results, serving.api)
            check = Check(_CHECK_OF[service])
            stack.inject_fault(service, Fault.DOWN)
            down = readiness.until(lambda observed: _named_down(observed, service), wait, poll_s)
            stack.clear_fault(service)
            check.extend([down.last.evidence()])
            results.judge(check, down.satisfied, f"503 naming {service.value} as down after {down.waited_s:.1f}s",
                          f"{_NO_ROUTE_SEEN}, so nothing named {service.value} as down" if readiness.missing else
                          f"{readiness.path} never answered 503 naming {service.value} as down within {wait:.0f}s "
                          f"(last: {down.last.status or down.last.error})",
                          failure=NO_ANSWER if down.last.status is None else _NO_ROUTE if readiness.missing else
                          decisive(f"it answered for {wait:.0f}s, longer than any cache the contract allows, "
                                   "and never named the dependency down"), api=serving.api)
            # Never 200 with everything up: no wait can see it come "back".
            back = (readiness.until(lambda observed: observed.status == 200, wait, poll_s)
                    if baseline.status == 200 else Polled(baseline, False, 0.0))
            if service is Service.QDRANT:
                _liveness(stack, serving, readiness, settings, results)
        return _Recovery(service, down.satisfied, back.satisfied, back.last)


def _named_down(observed: Observed, service: Service) -> bool:
    """Readiness answers 503 naming ``service`` as down."""
    return observed.status == 503 and dependency_state(observed.json, service) is False


def _ready_when_up(readiness: Readiness, observed: Observed, results: Results, api) -> None:
    check = Check("ex5.ready_when_up")
    check.extend([observed.evidence()])
    named = [s.value for s in _ALIASES if dependency_state(observed.json, s) is not None]
    # A 503 naming a dependency down while all are up: a health probe timed out on a loaded machine.
    degraded = observed.status == 503 and any(dependency_state(observed.json, s) is False for s in _ALIASES)
    results.judge(check, observed.status == 200 and len(named) == len(_ALIASES),
                  f"{readiness.path} answers 200 with checks of {', '.join(named)}",
                  f"{readiness.path} answered {observed.status or observed.error} with every dependency up"
                  if observed.status != 200 else
                  f"{readiness.path} answered 200 but checks only {named or 'nothing'} of qdrant, litellm, mlflow",
                  failure=NO_ANSWER if observed.status is None else
                  marginal("it named a dependency down while all were up: a dependency check that timed out under "
                           "load") if degraded else WRONG_ANSWER, api=api)


def _liveness(stack, serving: Serving, readiness: Readiness, settings: Settings, results: Results) -> None:
    check = Check("ex5.liveness_independent")
    for service in _ALIASES:
        stack.inject_fault(service, Fault.DOWN)
    try:
        ready = readiness.until(lambda observed: observed.status == 503, settings.cache_wait_s, settings.poll_s).last
        alive = serving.probe.call("GET", contract.LIVENESS_PATH, timeout=settings.liveness_timeout_s)
    finally:
        for service in _ALIASES:
            stack.clear_fault(service)
    check.extend([alive.evidence(), ready.evidence()])
    results.judge(check, alive.status == 200 and ready.status == 503,
                  "/health answers 200 while every dependency is down, readiness 503",
                  f"with every dependency down /health answered {alive.status or alive.error} "
                  f"and {readiness.path} {ready.status or ready.error}",
                  failure=NO_ANSWER if alive.status is None or ready.status is None else WRONG_ANSWER,
                  api=serving.api)
