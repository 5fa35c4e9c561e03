"""Exercise 2, graceful shutdown: drain on SIGTERM, cleanup logged, and a bounded drain.

uvicorn alone already lets an in-flight request finish and exits 0 (without bound), so a
pass needs what only a fix does: the app's own drain and cleanup lines, and an exit within
the bound while an upstream call never returns. The exit is waited for a margin past the
bound, so a miss by little (marginal, re-run) is told apart from a miss by far (decisive).
"""

from __future__ import annotations

import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pydantic import Field

from grader import contract
from grader.catalogue import CheckSpec, ScenarioSettings
from grader.models import Evidence
from grader.stack.base import LogLine, ScriptedReply, Stack

from .context import ScenarioContext, Serving, serve, upstream_calls_for, warm_up
from .http import Observed, unique_prompt
from .logs import as_evidence, between, matching, message_of, unreadable_output
from .polling import poll_until
from .recorder import Check, Results, decisive, marginal, missed_bound, with_margin

EXERCISE = "ex2"
CHECKS = (
    CheckSpec("ex2.drains_inflight", False,
              "on SIGTERM a slow in-flight generate completes with 200 and the drain is logged", group="slow"),
    CheckSpec("ex2.cleanup_logged", False,
              "after SIGTERM the cleanup (Qdrant closed, MLflow run ended) is logged and the exit is clean",
              group="slow"),
    CheckSpec("ex2.drain_bounded", False,
              "with an upstream that never answers, the API still exits cleanly within ~30 s of SIGTERM", group="hang"),
)


class Settings(ScenarioSettings):
    # The contract: "exits cleanly within 30 s even when an upstream call never returns". Exits
    # are waited on a margin past it, so a miss by little is re-run (marginal).
    drain_limit_s: float = Field(30, gt=0)
    # The in-flight generate the LLM answers this slowly: still in flight when SIGTERM comes.
    slow_reply_s: float = Field(6, gt=0)
    # How long the generate may take to reach the LLM once sent.
    reach_llm_s: float = Field(45, gt=0)
    # SIGTERM comes once the never-answered call has hung this long, not the instant it reached
    # the LLM: an app without a drain deadline of its own, whose LLM timeout (about 30 s by the
    # contract) ends the call, then exits ~27 s after SIGTERM, clear of the bound instead of on it.
    hang_before_sigterm_s: float = Field(3, ge=0)


_DRAIN = re.compile(
    r"drain|(in[- ]?flight|active|pending|ongoing|remaining|outstanding|open)\W+(\w+\W+){0,2}requests?"
    r"|requests?\W+(\w+\W+){0,3}(in[- ]?flight|active|pending|ongoing|remaining|outstanding|to (complete|finish))",
    re.IGNORECASE,
)
# A count of requests a drain line states ("Waiting for 1 active request(s)", "no request left"):
# a drain that counted none while one was in flight tracked nothing (uvicorn's own wait finished it).
_COUNTED = re.compile(r"\b(\d+|no|zero)\s+(?:[\w-]+\s+){0,2}?requests?\b", re.IGNORECASE)
_QDRANT_CLOSED = re.compile(r"qdrant.*(clos|shut|disconnect|clean|releas|stop)|(clos|shut|disconnect|releas).*qdrant",
                            re.IGNORECASE)
_MLFLOW_ENDED = re.compile(r"mlflow.*(end|finish|clos|terminat|stop|flush|complet)|(end|finish|clos|terminat).*mlflow",
                           re.IGNORECASE)
_NEVER_REACHED = marginal("the generate never reached the LLM: load delays a request, so nothing was shut down "
                          "under it")
_LOGGED = decisive("the process had exited, so its output was complete when judged")


def run(ctx: ScenarioContext, results: Results) -> None:
    # Each case SIGTERMs its own API in its own stack, side by side: the drains overlap.
    with ThreadPoolExecutor(max_workers=2) as pool:
        cases = [pool.submit(case, ctx, results) for case in (_drain_with_slow_upstream, _drain_with_hanging_upstream)]
        for case in cases:
            case.result()


@dataclass(frozen=True)
class _Shutdown:
    """What happened when SIGTERM came while a generate was in flight."""

    login: Observed
    warm_up: Observed  # a first generate, answered normally before the one SIGTERM interrupts
    response: Observed
    reached: bool  # the generate was at the LLM when SIGTERM was sent
    code: int | None  # None: still running past the bound and its margin (then killed)
    took: float  # seconds from SIGTERM to exit (or to giving up)
    after: list[LogLine]  # output after SIGTERM
    unreadable: str | None  # why the output cannot be judged (a limit hit)

    def evidence(self) -> list[Evidence]:
        where = "while the generate was at the LLM" if self.reached else "before the LLM was reached"
        return [self.login.evidence(), self.warm_up.evidence(), self.response.evidence(),
                Evidence(kind="exit", summary=f"SIGTERM {where}; exit code {self.code} after {self.took:.1f}s"),
                as_evidence(self.after, "output after SIGTERM", limit=25)]

    def exited_within(self, limit: float) -> bool:
        return self.code is not None and self.took <= limit


def _sigterm_during_generate(serving: Serving, stack: Stack, reply: ScriptedReply, settings: Settings,
                             after_s: float = 0.0) -> _Shutdown:
    """Send a generate the LLM answers with ``reply``; ``after_s`` once the LLM has it, SIGTERM
    the API and wait for its exit up to the drain limit and its margin."""
    limit, reach_llm_s = settings.drain_limit_s, settings.reach_llm_s
    with serving.probe, ThreadPoolExecutor(max_workers=1) as pool:
        try:
            token, login = serving.probe.login()
            # The first generate pays for the API's lazy set-up: then the one SIGTERM interrupts
            # reaches the LLM soon.
            warmed = warm_up(serving, token)
            stack.llm.script([], then=reply)
            prompt = unique_prompt()
            future = pool.submit(serving.probe.generate, token, prompt=prompt, timeout=with_margin(limit) + 15)
            reached = poll_until(lambda: bool(upstream_calls_for(stack, prompt)),
                                 lambda at_llm: at_llm or future.done(), reach_llm_s, interval=0.1).last
            if reached and after_s:
                time.sleep(after_s)
            sigterm_at = time.time()
            serving.api.send_signal(signal.SIGTERM)
            code = serving.api.wait_exit(with_margin(limit))
            took = time.time() - sigterm_at
            if code is not None:
                future.result()  # a clean drain answers before the exit
        finally:
            serving.api.kill()  # also ends the output readers: what follows reads it all
            stack.llm.script([])
        response = future.result()  # the kill closed the connection: at once
    return _Shutdown(login, warmed, response, reached, code, took, between(serving.api.output(), sigterm_at),
                     unreadable_output(serving.api))


def _drain_with_slow_upstream(ctx: ScenarioContext, results: Results) -> None:
    with ctx.open_stack("ex2-slow") as stack:
        serving = serve(ctx, stack, results, "slow")
        if serving is not None:
            _judge_slow_drain(ctx, stack, serving, results)


def _judge_slow_drain(ctx: ScenarioContext, stack: Stack, serving: Serving, results: Results) -> None:
    settings: Settings = ctx.settings
    limit = settings.drain_limit_s
    drain, cleanup = Check("ex2.drains_inflight"), Check("ex2.cleanup_logged")
    shutdown = _sigterm_during_generate(serving, stack, ScriptedReply(delay=settings.slow_reply_s), settings)
    api = serving.api
    for check in (drain, cleanup):
        check.extend(shutdown.evidence())
    response = shutdown.response
    if not shutdown.reached:
        results.judge(drain, False, "", f"the generate never reached the LLM ({response.summary()})",
                      failure=_NEVER_REACHED, api=api)
    elif response.status != 200:
        results.judge(drain, False, "", f"the in-flight generate ended with {response.status or response.error}, "
                                        "not 200",
                      failure=decisive("the in-flight request was answered otherwise, or dropped by an exit or "
                                       "a shutdown that outlasted its bound by far"), api=api)
    elif shutdown.unreadable:
        results.judge(drain, False, "", f"the drain log cannot be judged: {shutdown.unreadable}",
                      failure=decisive("the output outgrew its limit, every time"), api=api)
    else:
        drained = matching(shutdown.after, _DRAIN)
        counts = [_count(match.group(1)) for line in drained for match in _COUNTED.finditer(message_of(line))]
        results.judge(drain, bool(drained) and (not counts or max(counts) > 0),
                      "the in-flight request completed with 200 and the drain was logged",
                      "the in-flight request completed (uvicorn does that by itself) but no drain of in-flight "
                      "requests was logged after SIGTERM" if not drained else
                      "the in-flight request completed (uvicorn does that by itself) but the drain counted no request "
                      "in flight: it tracked none", failure=_LOGGED, api=api)
    qdrant, mlflow = matching(shutdown.after, _QDRANT_CLOSED), matching(shutdown.after, _MLFLOW_ENDED)
    missing = [name for name, lines in (("Qdrant client closed", qdrant), ("MLflow run ended", mlflow)) if not lines]
    if not shutdown.exited_within(limit):
        results.judge(cleanup, False, "", f"still running {limit:.0f}s after SIGTERM",
                      failure=missed_bound(limit, shutdown.took if shutdown.code is not None else None), api=api)
    elif shutdown.code not in contract.CLEAN_EXIT_CODES:
        results.judge(cleanup, False, "", f"exit code {shutdown.code} after SIGTERM is not a clean exit (0 or -15)",
                      failure=decisive("the exit status does not depend on load"), api=api)
    elif shutdown.unreadable:
        results.judge(cleanup, False, "", f"the cleanup log cannot be judged: {shutdown.unreadable}",
                      failure=decisive("the output outgrew its limit, every time"), api=api)
    else:
        results.judge(cleanup, not missing, "cleanup logged (Qdrant closed, MLflow run ended), clean exit",
                      f"no log line after SIGTERM says: {', '.join(missing)}", failure=_LOGGED, api=api)


def _count(word: str) -> int:
    return int(word) if word.isdigit() else 0


def _drain_with_hanging_upstream(ctx: ScenarioContext, results: Results) -> None:
    with ctx.open_stack("ex2-hang") as stack:
        serving = serve(ctx, stack, results, "hang")
        if serving is not None:
            _judge_bounded_drain(ctx, stack, serving, results)


def _judge_bounded_drain(ctx: ScenarioContext, stack: Stack, serving: Serving, results: Results) -> None:
    settings: Settings = ctx.settings
    limit = settings.drain_limit_s
    check = Check("ex2.drain_bounded")
    shutdown = _sigterm_during_generate(serving, stack, ScriptedReply(hang=True), settings,
                                        after_s=settings.hang_before_sigterm_s)
    check.extend(shutdown.evidence())
    if not shutdown.reached:
        results.judge(check, False, "", "the generate never reached the LLM, so no drain could be bounded",
                      failure=_NEVER_REACHED, api=serving.api)
    elif not shutdown.exited_within(limit):
        results.judge(check, False, "", f"still running {limit:.0f}s after SIGTERM with an upstream call that "
                                        "never returns: the drain has no deadline"
                      + (f" (it exited after {shutdown.took:.1f}s)" if shutdown.code is not None else ""),
                      failure=missed_bound(limit, shutdown.took if shutdown.code is not None else None),
                      api=serving.api)
    else:
        results.judge(check, shutdown.code in contract.CLEAN_EXIT_CODES,
                      f"exited cleanly {shutdown.took:.1f}s after SIGTERM despite a never-answering upstream",
                      f"exited {shutdown.took:.1f}s after SIGTERM but with code {shutdown.code}, not a clean exit",
                      failure=decisive("the exit status does not depend on load"), api=serving.api)
