"""Exercise 5, health checks: liveness independent of dependencies, readiness that names the one down.

Readiness answers may be cached (up to 30 s): after breaking a dependency the probe waits
until the answer names *that* dependency as down, never for any 503 (CONTRACT.md pitfalls).
Each dependency is broken in its own stack so the three waits overlap.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from grader import contract
from grader.stack.base import Fault, Service

from .context import ScenarioContext, Serving, start_serving
from .http import Observed
from .recorder import Check, Results

EXERCISE = "ex5"
_ALIASES = {
    Service.QDRANT: ("qdrant", "vector"),
    Service.LLM: ("litellm", "llm", "openai", "proxy"),
    Service.MLFLOW: ("mlflow", "tracking"),
}
_CHECK_OF = {Service.QDRANT: "ex5.names_qdrant_down", Service.LLM: "ex5.names_llm_down",
             Service.MLFLOW: "ex5.names_mlflow_down"}
_DOWN_WORDS = {"down", "unhealthy", "error", "failed", "fail", "failure", "unreachable", "degraded",
               "unavailable", "critical", "dead", "offline", "ko", "false"}
_UP_WORDS = {"up", "healthy", "ok", "pass", "passed", "alive", "available", "online", "true"}
_POLL_S = 2.0


class Readiness:
    """Finds where a submission serves readiness (path, token needed) and asks it."""

    def __init__(self, serving: Serving, token: str | None) -> None:
        self.probe = serving.probe
        self.token = token
        self.path = contract.READINESS_PATHS[0]
        self.headers: dict[str, str] = {}
        for path in contract.READINESS_PATHS:
            observed = self.probe.call("GET", path)
            if observed.status in (401, 403) and token:
                self.headers = {"Authorization": f"Bearer {token}"}
                observed = self.probe.call("GET", path, headers=self.headers)
            if observed.status != 404:
                self.path = path
                break

    def ask(self) -> Observed:
        return self.probe.call("GET", self.path, headers=self.headers, timeout=15)


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
        recovered = [future.result() for future in futures]
    served = [r for r in recovered if r is not None]
    if len(served) == len(recovered):  # otherwise the stack that never served failed it already
        check = Check("ex5.recovers")
        check.extend([last.evidence() for _, last in served])
        results.judge(check, all(ok for ok, _ in served), "readiness back to 200 after each dependency recovered",
                      "readiness did not come back to 200 after a dependency recovered")


def _one_dependency(ctx: ScenarioContext, service: Service, results: Results) -> tuple[bool, Observed] | None:
    wait = ctx.setting("cache_wait_s", 35)
    with ctx.open_stack(f"ex5-{service.value}") as stack:
        serving, failure, evidence = start_serving(ctx, stack)
        if serving is None:
            checks = [_CHECK_OF[service], "ex5.recovers"]
            if service is Service.QDRANT:
                checks += ["ex5.ready_when_up", "ex5.liveness_independent"]
            results.fail_all(checks, failure, [evidence])
            return None
        with serving.probe:
            token, _ = serving.probe.login()
            readiness = Readiness(serving, token)
            baseline = readiness.ask()
            if service is Service.QDRANT:
                _ready_when_up(readiness, baseline, results)
            check = Check(_CHECK_OF[service])
            stack.inject_fault(service, Fault.DOWN)
            named, last = _wait_for(readiness, service, want_up=False, wait=wait)
            stack.clear_fault(service)
            check.extend([last.evidence()])
            results.judge(check, named and last.status == 503,
                          f"503 naming {service.value} as down after {last.elapsed_s:.1f}s",
                          f"{readiness.path} never answered 503 naming {service.value} as down within {wait:.0f}s "
                          f"(last: {last.status or last.error})")
            # Never 200 with everything up: waiting for it to come "back" would prove nothing.
            recovered, back = (_wait_for(readiness, service, want_up=True, wait=wait) if baseline.status == 200
                               else (False, baseline))
            if service is Service.QDRANT:
                _liveness(stack, serving, readiness, wait, results)
        serving.api.kill()
        return recovered and back.status == 200, back


def _wait_for(readiness: Readiness, service: Service, *, want_up: bool, wait: float) -> tuple[bool, Observed]:
    """Poll readiness until ``service`` is named up (with 200) or down (with 503)."""
    deadline = time.monotonic() + wait
    while True:
        observed = readiness.ask()
        state = dependency_state(observed.json, service)
        if want_up and observed.status == 200:
            return True, observed
        if not want_up and state is False and observed.status == 503:
            return True, observed
        if time.monotonic() > deadline:
            return False, observed
        time.sleep(_POLL_S)


def _ready_when_up(readiness: Readiness, observed: Observed, results: Results) -> None:
    check = Check("ex5.ready_when_up")
    check.extend([observed.evidence()])
    named = [s.value for s in _ALIASES if dependency_state(observed.json, s) is not None]
    results.judge(check, observed.status == 200 and len(named) == len(_ALIASES),
                  f"{readiness.path} answers 200 with checks of {', '.join(named)}",
                  f"{readiness.path} answered {observed.status or observed.error} with every dependency up"
                  if observed.status != 200 else
                  f"{readiness.path} answered 200 but checks only {named or 'nothing'} of qdrant, litellm, mlflow")


def _liveness(stack, serving: Serving, readiness: Readiness, wait: float, results: Results) -> None:
    check = Check("ex5.liveness_independent")
    for service in _ALIASES:
        stack.inject_fault(service, Fault.DOWN)
    try:
        deadline = time.monotonic() + wait
        while True:
            ready = readiness.ask()
            if ready.status == 503 or time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)
        alive = serving.probe.call("GET", contract.LIVENESS_PATH, timeout=5)
    finally:
        for service in _ALIASES:
            stack.clear_fault(service)
    check.extend([alive.evidence(), ready.evidence()])
    results.judge(check, alive.status == 200 and ready.status == 503,
                  "/health answers 200 while every dependency is down, readiness 503",
                  f"with every dependency down /health answered {alive.status or alive.error} "
                  f"and {readiness.path} {ready.status or ready.error}")
