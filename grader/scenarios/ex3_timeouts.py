"""Exercise 3, timeouts and limits: a hanging LLM is bounded, big bodies get 413, a breaker.

The OpenAI SDK's defaults (600 s timeout, 2 retries) and pydantic's 422 on a long prompt
are what the starter does for free: none of them passes a check here.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from grader import contract
from grader.stack.base import ScriptedReply

from .context import ScenarioContext, serve, upstream_calls
from .http import Observed, send_oversized
from .polling import poll_until
from .recorder import NO_ANSWER, WRONG_ANSWER, Check, Results, decisive, missed_bound, unanswered, with_margin

EXERCISE = "ex3"
_TWO_MB = 2 * 1024 * 1024
_RECOVERY_POLL_S = 2.0


def run(ctx: ScenarioContext, results: Results) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        hang = pool.submit(_hang_and_bodies, ctx, results)
        breaker = pool.submit(_breaker, ctx, results)
        hang.result()
        breaker.result()


def _hang_and_bodies(ctx: ScenarioContext, results: Results) -> None:
    with ctx.open_stack("ex3-hang") as stack:
        serving = serve(ctx, stack, results, ["ex3.hang_bounded", "ex3.body_limit", "ex3.body_limit_chunked"])
        if serving is None:
            return
        with serving:
            token, login = serving.probe.login()
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            for check_id, chunked in (("ex3.body_limit", False), ("ex3.body_limit_chunked", True)):
                check = Check(check_id)
                status, note = send_oversized(serving.api.url, contract.GENERATE_PATH, _TWO_MB,
                                              chunked=chunked, headers=auth)
                kind = "chunked (no Content-Length)" if chunked else "with Content-Length"
                check.note("request", f"POST {contract.GENERATE_PATH} 2 MB {kind} -> {status}", note)
                results.judge(check, status == 413, f"a 2 MB body {kind} got 413",
                              f"a 2 MB body {kind} got {status if status else 'no answer'} instead of 413"
                              + (" (pydantic's 422 after reading it all)" if status == 422 else ""),
                              failure=unanswered(status), api=serving.api)
            limit = ctx.setting("hang_limit_s", 45)
            check = Check("ex3.hang_bounded")
            # A first generate pays for lazy imports and connections: not part of the bound.
            warm_up = serving.probe.generate(token, timeout=limit)
            check.extend([warm_up.evidence()])
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
    opens, recovers = Check("ex3.breaker_opens"), Check("ex3.breaker_recovers")
    with ctx.open_stack("ex3-breaker") as stack:
        serving = serve(ctx, stack, results, [opens.check_id, recovers.check_id])
        if serving is None:
            return
        with serving:
            token, login = serving.probe.login()
            opens.extend([login.evidence()])
            stack.llm.script([], then=ScriptedReply(status=503))
            opened = False
            reached_upstream = False
            unanswered_requests = 0
            timeout = ctx.setting("hang_limit_s", 45)
            for attempt in range(int(ctx.setting("breaker_requests", 8))):
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
            window = ctx.setting("breaker_recovery_wait_s", 75)
            started = time.monotonic()
            polled = poll_until(lambda: serving.probe.generate(token, timeout=timeout),
                                lambda observed: observed.status == 200, window, interval=_RECOVERY_POLL_S)
            recovers.extend([polled.last.evidence()])
            waited = time.monotonic() - started
            results.judge(recovers, polled.satisfied, f"traffic passes again {waited:.0f}s after the breaker opened",
                          f"still failing {waited:.0f}s after the LLM recovered "
                          f"({polled.last.status or polled.last.error})",
                          failure=NO_ANSWER if polled.last.status is None else
                          decisive(f"it kept answering {polled.last.status} for {window:.0f}s, well past the "
                                   "contract's recovery window"), api=serving.api)
