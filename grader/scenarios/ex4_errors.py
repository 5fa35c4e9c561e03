"""Exercise 4, errors and retry: the student's own retries, precise statuses, useful error bodies.

The OpenAI SDK already retries twice (3 upstream calls) on 5xx and 429, so only a fourth
call before success proves the student's retries; a 429 must surface as 429, not the
SDK's exhausted-retries 500.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from grader import contract
from grader.catalogue import CheckSpec, ScenarioSettings
from grader.stack.base import Fault, LogLine, ScriptedReply, Service, Stack

from .context import ScenarioContext, serve, upstream_calls, upstream_calls_for, warm_up
from .http import Observed, unique_prompt
from .logs import as_evidence, between, matching, settle, unreadable_output
from .polling import poll_until
from .recorder import NO_ANSWER, WRONG_ANSWER, Check, FailureCause, Results, decisive, marginal, unanswered

EXERCISE = "ex4"
CHECKS = (
    CheckSpec("ex4.retries_transient", False,
              "503, 503, 503, 200 upstream ends in 200 after 4 upstream calls with growing gaps", group="api"),
    CheckSpec("ex4.retries_logged", False, "each retry of a transient failure is logged", group="api",
              depends_on=("ex4.retries_transient",)),
    CheckSpec("ex4.no_retry_on_400", False, "an upstream 400 answers 400 after exactly one upstream call",
              group="api"),
    CheckSpec("ex4.rate_limit_surfaces", False, "an upstream that keeps answering 429 surfaces as 429", group="api"),
    CheckSpec("ex4.unknown_model_404", False, "an unknown model answers 404 naming the model", group="api"),
    CheckSpec("ex4.error_body_fields", False, "error bodies are JSON with incident_id, timestamp and a message",
              group="api"),
    CheckSpec("ex4.mlflow_fallback", False,
              "with MLflow down generate still succeeds and the trace is kept (fallback file or log)", group="api"),
)


class Settings(ScenarioSettings):
    # The bound on one probe call, retries and their backoff included.
    call_timeout_s: float = Field(45, gt=0)
    # "About 1 s, 2 s, 4 s": each gap at least this many times the one before (jitter allowed),
    # the first at least this long (the SDK's own retries start at 0.5 s at most, so a first gap
    # under it is the SDK retrying, not the student).
    backoff_growth: float = Field(1.4, gt=1)
    first_gap_s: float = Field(0.7, gt=0)
    # Gaps within this fraction under a threshold are near it: a backoff that load squeezed.
    near_fraction: float = Field(0.15, ge=0, lt=1)
    # Log lines that must mention the retries (one per retry of the 503, 503, 503 sequence).
    retry_lines: int = Field(3, ge=1)
    # How long a trace kept in the background (MLflow down) may take to show.
    trace_wait_s: float = Field(15, gt=0)


_RETRY = re.compile(r"retr(y|ying|ies)|attempt|backoff|back.off", re.IGNORECASE)
_MLFLOW_TROUBLE = re.compile(r"mlflow.*(fail|error|unavailable|unreachable|down|fallback|could not|cannot|refused)"
                             r"|(fallback|fail|error).*(mlflow|trac)", re.IGNORECASE)
# urllib3 warns, naming the MLflow URL, each time the MLflow client retries: a library's line.
_LIBRARY_RETRY = re.compile(r"Retrying \(Retry\(")
_OUTPUT_SETTLED = decisive("the output had settled when judged")


def run(ctx: ScenarioContext, results: Results) -> None:
    with ctx.open_stack("ex4") as stack:
        serving = serve(ctx, stack, results, "api")
        if serving is None:
            return
        with serving:
            token, _ = serving.probe.login()
            _transient(ctx, stack, serving, token, results)
            errors: list[Observed] = []
            errors.append(_unknown_model(stack, serving, token, results))
            errors.append(_bad_request(ctx, stack, serving, token, results))
            _mlflow_fallback(ctx, stack, serving, token, results)
            errors.append(_rate_limited(ctx, stack, serving, token, results))
            _error_bodies(errors, results, serving.api)


def _transient(ctx, stack: Stack, serving, token, results: Results) -> None:
    check, logged = Check("ex4.retries_transient"), Check("ex4.retries_logged")
    # The first generate pays for the API's lazy set-up: keep it out of the timed sequence.
    check.extend([warm_up(serving, token).evidence()])
    stack.llm.script([ScriptedReply(status=503)] * 3)
    prompt = unique_prompt()
    settings: Settings = ctx.settings
    observed = serving.probe.generate(token, prompt=prompt, timeout=settings.call_timeout_s)
    calls = upstream_calls_for(stack, prompt)
    stack.llm.script([])
    gaps = [round(b.at - a.at, 2) for a, b in zip(calls, calls[1:])]
    check.extend([observed.evidence()])
    check.note("journal", f"{len(calls)} upstream call(s); gaps between them: {gaps} s")
    api = serving.api
    if observed.status != 200:
        results.judge(check, False, "", f"503, 503, 503 then 200 upstream answered {observed.status or observed.error}"
                                        f" after {len(calls)} upstream call(s), not 200 after 4",
                      failure=unanswered(observed.status), api=api)
    elif len(calls) != 4:
        results.judge(check, False, "", f"200, but after {len(calls)} upstream calls instead of 4 "
                                        "(the SDK's own 2 retries make 3)",
                      failure=decisive("the number of upstream calls does not depend on load"), api=api)
    else:
        results.judge(check, _is_backoff(gaps, settings), f"200 after 4 upstream calls with growing gaps {gaps} s",
                      f"200 after 4 upstream calls, but the gaps {gaps} s are not a backoff of about 1, 2, 4 s"
                      + (f" (a first gap under {settings.first_gap_s:g} s is the SDK's own retry)"
                         if gaps[0] < settings.first_gap_s else ""),
                      failure=_backoff_failure(gaps, settings), api=api)
    if not results.passed(check.check_id):
        results.not_gradable(logged.check_id, "no retry sequence of the student's to look for "
                                              "(ex4.retries_transient failed)",
                             failure=results.failure_of(check.check_id))
        return
    settle(api)
    if unreadable := unreadable_output(api):
        results.judge(logged, False, "", f"the retry log cannot be judged: {unreadable}",
                      failure=decisive("the output outgrew its limit, every time"), api=api)
        return
    # From the first call to the answer, and what the settled output wrote after it.
    window = between(api.output(), calls[0].at, time.time())
    retry_lines = [line for line in matching(window, _RETRY) if not _LIBRARY_RETRY.search(line.text)]
    logged.extend([as_evidence(retry_lines or window, f"{len(retry_lines)} retry line(s) between the upstream calls")])
    results.judge(logged, len(retry_lines) >= settings.retry_lines, f"{len(retry_lines)} retries logged",
                  f"{len(retry_lines)} log line(s) mention the {settings.retry_lines} retries", failure=_OUTPUT_SETTLED,
                  api=api)


def _is_backoff(gaps: list[float], settings: Settings, slack: float = 0.0) -> bool:
    """Three gaps, each at least ``backoff_growth`` times the one before, the first at least
    ``first_gap_s``: both thresholds lowered by ``slack`` (a fraction) when given."""
    growth, first = settings.backoff_growth * (1 - slack), settings.first_gap_s * (1 - slack)
    return len(gaps) == 3 and gaps[0] >= first and all(later >= growth * earlier
                                                       for earlier, later in zip(gaps, gaps[1:]))


def _backoff_failure(gaps: list[float], settings: Settings) -> FailureCause:
    """Marginal when the gaps would be a backoff with thresholds ``near_fraction`` lower: load
    squeezed a real backoff; decisive when they are far from one."""
    if _is_backoff(gaps, settings, slack=settings.near_fraction):
        return marginal(f"the gaps {gaps} s are within {settings.near_fraction:.0%} of a backoff's thresholds")
    return decisive(f"the gaps {gaps} s are far from a backoff of about 1, 2, 4 s")


def _unknown_model(stack, serving, token, results: Results) -> Observed:
    check = Check("ex4.unknown_model_404")
    observed = serving.probe.generate(token, model=contract.UNKNOWN_MODEL)
    check.extend([observed.evidence()])
    names = contract.UNKNOWN_MODEL in observed.text
    results.judge(check, observed.status == 404 and names, f"404 naming {contract.UNKNOWN_MODEL}",
                  f"answered {observed.status or observed.error} for an unknown model"
                  if observed.status != 404 else "404, but the body does not name the model",
                  failure=unanswered(observed.status), api=serving.api)
    return observed


def _bad_request(ctx, stack, serving, token, results: Results) -> Observed:
    check = Check("ex4.no_retry_on_400")
    stack.llm.script([], then=ScriptedReply(status=400))
    before = len(upstream_calls(stack))
    observed = serving.probe.generate(token, timeout=ctx.settings.call_timeout_s)
    calls = len(upstream_calls(stack)) - before
    stack.llm.script([])
    check.extend([observed.evidence()])
    check.note("journal", f"{calls} upstream call(s) for an upstream that keeps answering 400")
    results.judge(check, observed.status == 400 and calls == 1, "400 after exactly one upstream call",
                  f"answered {observed.status or observed.error} after {calls} upstream call(s), "
                  "not 400 after exactly one", failure=unanswered(observed.status), api=serving.api)
    return observed


def _rate_limited(ctx, stack, serving, token, results: Results) -> Observed:
    check = Check("ex4.rate_limit_surfaces")
    stack.llm.script([], then=ScriptedReply(status=429, headers={"Retry-After": "1"}))
    before = len(upstream_calls(stack))
    observed = serving.probe.generate(token, timeout=ctx.settings.call_timeout_s)
    calls = len(upstream_calls(stack)) - before
    stack.llm.script([])
    check.extend([observed.evidence()])
    check.note("journal", f"{calls} upstream call(s) for an upstream that keeps answering 429")
    results.judge(check, observed.status == 429, f"429 surfaced after {calls} upstream call(s)",
                  f"answered {observed.status or observed.error} for an upstream 429, not 429",
                  failure=unanswered(observed.status), api=serving.api)
    return observed


@dataclass(frozen=True)
class _Trace:
    """What kept a trace with MLflow down: log lines about the failure, those holding the trace's
    marks, and files written since that hold them."""

    troubles: list[LogLine]
    kept: list[LogLine]
    written: list[str]


def _mlflow_fallback(ctx, stack: Stack, serving, token, results: Results) -> None:
    check = Check("ex4.mlflow_fallback")
    stack.inject_fault(Service.MLFLOW, Fault.DOWN)
    try:
        started = time.time()
        prompt = unique_prompt()
        observed = serving.probe.generate(token, prompt=prompt, timeout=ctx.settings.call_timeout_s)
        # What identifies the trace. A fallback must hold one of them: libraries write files too
        # (MLflow's telemetry.json), and log lines about MLflow (urllib3's retry warnings) on
        # their own, so neither a new file nor an error line proves the trace was kept.
        marks = [mark for mark in (prompt, contract.MODEL, observed.header(contract.REQUEST_ID_HEADER)) if mark]
        # A trace kept in the background still counts, and a loaded machine delays it: a worker
        # thread still importing mlflow took over the 2 s once waited here. Stop at the first sign.
        def look() -> _Trace:
            troubles = [line for line in matching(between(serving.api.output(), started), _MLFLOW_TROUBLE)
                        if not _LIBRARY_RETRY.search(line.text)]
            return _Trace(troubles, [line for line in troubles if any(mark in line.text for mark in marks)],
                          stack.files_written_since(started, marks))

        trace = poll_until(look, lambda seen: bool(seen.kept or seen.written) or observed.status != 200,
                           ctx.settings.trace_wait_s, interval=1.0).last
    finally:
        stack.clear_fault(Service.MLFLOW)
    troubles, kept, written = trace.troubles, trace.kept, trace.written
    check.extend([observed.evidence(), as_evidence(troubles, "log lines about the MLflow failure")])
    check.note("file", f"files written during the call that hold the trace: {written[:5]}")
    api = serving.api
    lost = decisive(f"nothing kept the trace within {ctx.settings.trace_wait_s:.0f}s of the answer")
    if observed.status != 200:
        results.judge(check, False, "", f"with MLflow down generate answered {observed.status or observed.error}, not 200",
                      failure=unanswered(observed.status), api=api)
    elif not written and (unreadable := unreadable_output(api)):
        results.judge(check, False, "", f"no fallback file, and the log cannot be judged: {unreadable}",
                      failure=decisive("the output outgrew its limit, every time"), api=api)
    elif troubles and not kept and not written:
        results.judge(check, False, "", f"200 with MLflow down and {len(troubles)} line(s) about the failure, but the "
                                        "trace was lost: no fallback file, and no such line holds its prompt, model "
                                        "or request id", failure=lost, api=api)
    else:
        results.judge(check, bool(kept or written), "200 with MLflow down, and the trace kept "
                      + ("in a fallback file" if written else "in an error log line"),
                      "200 with MLflow down, but the trace was lost silently (no fallback file, no log line)",
                      failure=lost, api=api)


def _error_fields(body: Any) -> set[str]:
    """Keys of an error body, at the top level or nested under FastAPI's ``detail``."""
    if not isinstance(body, dict):
        return set()
    keys = set(body)
    if isinstance(body.get("detail"), dict):
        keys |= set(body["detail"])
    if isinstance(body.get("error"), dict):
        keys |= set(body["error"])
    return keys


def _error_bodies(errors: list[Observed], results: Results, api) -> None:
    check = Check("ex4.error_body_fields")
    answered = [observed for observed in errors if observed.status is not None and observed.status >= 400]
    check.extend([observed.evidence() for observed in answered])
    lacking = []
    for observed in answered:
        fields = _error_fields(observed.json)
        missing = [name for name in ("incident_id", "timestamp") if name not in fields]
        if not fields & {"message", "error", "detail"}:
            missing.append("a message")
        if missing:
            lacking.append(f"{observed.status} lacks {', '.join(missing)}")
    if not answered:
        results.judge(check, False, "", "no error response to inspect",
                      failure=NO_ANSWER if any(o.status is None for o in errors) else WRONG_ANSWER, api=api)
    else:
        results.judge(check, not lacking, f"{len(answered)} error bodies carry incident_id, timestamp and a message",
                      "; ".join(lacking), failure=WRONG_ANSWER, api=api)
