"""Exercise 3, timeouts and limits: a hanging LLM is bounded, big bodies get 413, a breaker.

The OpenAI SDK's defaults (600 s timeout, 2 retries) and pydantic's 422 on a long prompt
are what the starter does for free: none of them passes a check here.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from pydantic import Field

from grader import contract
from grader.catalogue import CheckSpec, ScenarioSettings
from grader.stack.base import ScriptedReply

from grader.sandbox.limits import human_bytes

from .context import ScenarioContext, serve, upstream_calls, warm_up
from .http import Observed, send_oversized
from .polling import poll_until
from .recorder import NO_ANSWER, WRONG_ANSWER, Check, Results, decisive, missed_bound, unanswered, with_margin

EXERCISE = "ex3"
CHECKS = (
    CheckSpec("ex3.hang_bounded", False,
              "with the LLM proxy hanging, generate answers 504/503 within the probe's 45 s", group="hang"),
    CheckSpec("ex3.body_limit", False, "a 2 MB body with Content-Length gets 413", group="hang"),
    CheckSpec("ex3.body_limit_chunked", False, "a 2 MB chunked body without Content-Length gets 413", group="hang"),
    CheckSpec("ex3.breaker_opens", False,
              "after repeated upstream failures, calls fail fast with 503 and reach no upstream", group="breaker"),
    CheckSpec("ex3.breaker_recovers", False, "after its recovery window the breaker lets traffic through again",
              group="breaker", depends_on=("ex3.breaker_opens",)),
)


class Settings(ScenarioSettings):
    # The whole call, retries included, must end within this (the contract's ~30 s, with room).
    hang_limit_s: float = Field(45, gt=0)
    # An oversized body: twice the contract's 1 MB limit.
    body_bytes: int = Field(2 * 1024 * 1024, gt=0)
    # Failing requests sent to open the breaker (the contract: up to 8).
    breaker_requests: int = Field(8, ge=1)
    # The longest recovery window waited for, and how often traffic is tried meanwhile.
    breaker_recovery_wait_s: float = Field(75, gt=0)
    recovery_poll_s: float = Field(2, gt=0)


def run(ctx: ScenarioContext, results: Results) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        hang = pool.submit(_hang_and_bodies, ctx, results)
        breaker = pool.submit(_breaker, ctx, results)
        hang.result()
        breaker.result()


def _hang_and_bodies(ctx: ScenarioContext, results: Results) -> None:
    settings: Settings = ctx.settings
    with ctx.open_stack("ex3-hang") as stack:
        serving = serve(ctx, stack, results, "hang")
        if serving is None:
            return
        with serving:
            token, login = serving.probe.login()
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            for check_id, chunked in (("ex3.body_limit", False), ("ex3.body_limit_chunked", True)):
                check = Check(check_id)
                status, note = send_oversized(serving.api.url, contract.GENERATE_PATH, settings.body_bytes,
                                              chunked=chunked, headers=auth)
                kind = "chunked (no Content-Length)" if chunked else "with Content-Length"
                size = human_bytes(settings.body_bytes)
                check.note("request", f"POST {contract.GENERATE_PATH} {size} {kind} -> {status}", note)
                results.judge(check, status == 413, f"a {size} body {kind} got 413",
                              f"a {size} body {kind} got {status if status else 'no answer'} instead of 413"
                              + (" (pydantic's 422 after reading it all)" if status == 422 else ""),
                              failure=unanswered(status), api=serving.api)
            limit = settings.hang_limit_s
            check = Check("ex3.hang_bounded")
            # A first generate pays for lazy imports and connections: not part of the bound.
            check.extend([warm_up(serving, token).evidence()])
            stack.llm.script([], then=ScriptedReply(hang=True))
            # Waited past the bound by a margin: a miss by little is told apart from a hang.
            observed = serving.probe.generate(token, timeout=with_margin(limit))
            calls = len(upstream_calls(stack))
            check.extend([login.evidence(), observed.evidence()])
            check.note("journal", f"{calls} upstream call(s) received by the hanging LLM")
            _judge_hang(check, observed, calls, limit, results, serving.api)


def _judge_hang(check: Check, observed: Observed, calls: int, limit: float, results: Results, api) -> None:
    if observed.status is None or observed.elapsed_s > limit:
        results.judge(check, False, "", f"no answer within {limit:.0f}s with the LLM proxy hanging"
                      + (f" ({observed.status} after {observed.elapsed_s:.1f}s)" if observed.status else ""),
                      failure=missed_bound(limit, observed.elapsed_s if observed.status else None), api=api)
    elif not calls:
        results.judge(check, False, "", f"answered {observed.status} without calling the LLM",
                      failure=WRONG_ANSWER, api=api)
    else:
        results.judge(check, observed.status in (503, 504),
                      f"answered {observed.status} after {observed.elapsed_s:.1f}s with the LLM hanging",
                      f"answered {observed.status} after {observed.elapsed_s:.1f}s instead of 504/503",
                      failure=WRONG_ANSWER, api=api)


def _breaker(ctx: ScenarioContext, results: Results) -> None:
    settings: Settings = ctx.settings
    opens, recovers = Check("ex3.breaker_opens"), Check("ex3.breaker_recovers")
    with ctx.open_stack("ex3-breaker") as stack:
        serving = serve(ctx, stack, results, "breaker")
        if serving is None:
            return
        with serving:
            token, login = serving.probe.login()
            opens.extend([login.evidence()])
            stack.llm.script([], then=ScriptedReply(status=503))
            opened = False
            reached_upstream = False
            unanswered_requests = 0
            timeout = settings.hang_limit_s
            for attempt in range(settings.breaker_requests):
                before = len(upstream_calls(stack))
                observed = serving.probe.generate(token, timeout=timeout)
                new_calls = len(upstream_calls(stack)) - before
                reached_upstream = reached_upstream or new_calls > 0
                unanswered_requests += observed.status is None
                opens.extend([observed.evidence()])
                opens.note("journal", f"request {attempt + 1}: {new_calls} new upstream call(s)")
                if observed.status == 503 and new_calls == 0 and reached_upstream:
                    opened = True
                    break
            results.judge(opens, opened,
                          f"after {attempt + 1} failing requests calls fail fast with 503 and reach no upstream",
                          "every failing request still reached the LLM (or none answered 503): no breaker opened",
                          failure=NO_ANSWER if unanswered_requests else
                          decisive("every request was answered, and each reached the LLM or was not a 503"),
                          api=serving.api)
            if not opened:
                results.not_gradable(recovers.check_id, "the breaker never opened (ex3.breaker_opens failed)",
                                     failure=results.failure_of(opens.check_id))
                return
            stack.llm.script([])
            window = settings.breaker_recovery_wait_s
            started = time.monotonic()
            polled = poll_until(lambda: serving.probe.generate(token, timeout=timeout),
                                lambda observed: observed.status == 200, window, interval=settings.recovery_poll_s)
            recovers.extend([polled.last.evidence()])
            waited = time.monotonic() - started
            if not polled.satisfied:
                results.judge(recovers, False, "", f"still failing {waited:.0f}s after the LLM recovered "
                                                   f"({polled.last.status or polled.last.error})",
                              failure=NO_ANSWER if polled.last.status is None else
                              decisive(f"it kept answering {polled.last.status} for {window:.0f}s, well past the "
                                       "contract's recovery window"), api=serving.api)
                return
            # One success may be a half-open breaker's trial call: closed means the next one passes too.
            again = serving.probe.generate(token, timeout=timeout)
            recovers.extend([again.evidence()])
            results.judge(recovers, again.status == 200, f"traffic passes again {waited:.0f}s after the breaker "
                                                         "opened, and keeps passing",
                          f"one call passed {waited:.0f}s after the LLM recovered, but the next answered "
                          f"{again.status or again.error}: the breaker let a trial through without closing",
                          failure=unanswered(again.status), api=serving.api)
