"""What a scenario is given: a way to open fresh stacks, the checkout, and its settings."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from grader.models import Evidence
from grader.stack.base import ApiProcess, JournalEntry, Stack

from .deadline import GradingClock
from .http import Observed, Probe

# A first generate pays for an API's lazy set-up (imports, clients): beside another grading on two
# cores it has taken over 45 s. Waiting it out keeps that request from reaching the LLM late,
# in the middle of a scripted sequence meant for the next one.
_WARM_UP_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ScenarioContext:
    exercise: str
    checkout: Path  # the submission's repository root, for the static checks
    open_stack: Callable[[str], AbstractContextManager[Stack]]
    settings: Mapping[str, float] = field(default_factory=dict)
    clock: GradingClock | None = None  # the grading's wall-time limits; None: none (the runner's own tests)
    check_time: Callable[[], None] = lambda: None  # raises TimeLimitHit once the run's limit has passed

    def setting(self, name: str, default: float) -> float:
        return float(self.settings.get(name, default))


@dataclass
class Serving:
    """An API that answered HTTP, with a probe bound to it."""

    api: ApiProcess
    probe: Probe


def start_serving(ctx: ScenarioContext, stack: Stack,
                  env: Mapping[str, str | None] | None = None) -> tuple[Serving | None, str, Evidence]:
    """Start the API and wait for it to answer; on failure the reason and its output as evidence."""
    api = stack.start_api(env)
    timeout = ctx.setting("startup_timeout_s", 90)
    if api.wait_until_serving(timeout):
        return Serving(api, Probe(api.url, ctx.check_time)), "", Evidence(kind="note", summary=f"API serving at {api.url}")
    reason = api.startup_failure_reason()
    failure = (f"the API did not answer HTTP within {timeout:.0f}s ({reason})" if api.exit_code is None
               else f"the API did not start: {reason}")
    tail = "\n".join(line.text for line in api.output()[-25:])
    api.kill()
    return None, failure, Evidence(kind="log", summary="start-up output", detail=tail)


def upstream_calls(stack: Stack) -> list[JournalEntry]:
    """The chat completions the LLM stand-in received (health pings and model lists excluded)."""
    return [entry for entry in stack.llm.journal() if entry.path.rstrip("/").endswith("chat/completions")]


def warm_up(serving: Serving, token: str | None) -> Observed:
    """One ordinary generate, answered (or given up on) before a timed probe is scripted."""
    return serving.probe.generate(token, timeout=_WARM_UP_TIMEOUT_S)


def upstream_calls_for(stack: Stack, prompt: str) -> list[JournalEntry]:
    """The chat completions that carry ``prompt``: one request's calls, retries included."""
    return [entry for entry in upstream_calls(stack) if prompt in entry.body]
