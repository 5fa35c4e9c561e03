"""Exercise 6, structured logging: JSON lines, request ids on responses and in the logs, no print().

Every line written once the API serves, through its shutdown, is judged: uvicorn's own
plain-text access lines and MLflow's "View run" print count against the submission.
"""

from __future__ import annotations

import re
import secrets
import signal
import time
from dataclasses import dataclass

from pydantic import Field

from grader import contract
from grader.catalogue import CheckSpec, ScenarioSettings
from grader.stack.base import LogLine

from . import static
from .context import ScenarioContext, Serving, serve, warm_up
from .http import Observed
from .logs import as_evidence, between, is_iso8601, message_of, parse_json_object, settle, unreadable_output
from .recorder import NO_ANSWER, WRONG_ANSWER, Check, Results, decisive, marginal, unanswered

EXERCISE = "ex6"
CHECKS = (
    CheckSpec("ex6.json_logs", False,
              "every line written after start-up is a JSON object with timestamp, level, message", group="api"),
    CheckSpec("ex6.request_id_generated", False, "responses carry X-Request-ID as req_ + 16 hex characters",
              group="api"),
    CheckSpec("ex6.request_id_echoed", False, "a caller's X-Request-ID is echoed back", group="api"),
    CheckSpec("ex6.request_id_in_logs", False, "the log lines of a request carry its request id", group="api"),
    CheckSpec("ex6.no_print_calls", True, "no print() call in src/api (parsed, not grepped)"),
)


class Settings(ScenarioSettings):
    # The probe ends by stopping the service, to judge its shutdown lines too: how long it waits
    # for the exit after SIGTERM.
    shutdown_wait_s: float = Field(35, gt=0)

_REQUIRED_FIELDS = ("timestamp", "level", "message")


def run(ctx: ScenarioContext, results: Results) -> None:
    _no_print(ctx, results)
    with ctx.open_stack("ex6") as stack:
        serving = serve(ctx, stack, results, "api")
        if serving is None:
            return
        api = serving.api
        serving_since = time.time()
        with serving:
            token, login = serving.probe.login()
            answers = [login, serving.probe.call("GET", contract.LIVENESS_PATH),
                       serving.probe.call("GET", "/no-such-path-for-the-grader")]
            _generated_ids(answers, results, api)
            # A first generate sets up what is set up once (an MLflow run, a cache collection),
            # and those lines are no line of the traced request. Then let the output settle and
            # watch a quiet second: whatever logs then (a heartbeat) is background too.
            warmed = warm_up(serving, token)
            settle(api)
            quiet_from = time.time()
            time.sleep(1.0)
            # Two identical traced requests: a request's own lines recur in both, while a one-off
            # background line (set-up finishing late on a loaded machine) lands in one at most.
            traced = [_traced(serving, token) for _ in range(2)]
            _echoed(traced[0].observed, traced[0].echo, results, api)
            if unreadable := unreadable_output(api):
                results.fail_all(["ex6.request_id_in_logs"], f"the request's log lines cannot be judged: {unreadable}",
                                 failure=decisive("the output outgrew its limit, every time"))
            else:
                # A line carrying an earlier request's id is that request's (a late background line).
                earlier = {observed.header(contract.REQUEST_ID_HEADER) for observed in (*answers, warmed)} - {None}
                output = api.output()
                _ids_in_logs(traced, output, between(output, quiet_from, traced[0].started), earlier, results, api)
            api.send_signal(signal.SIGTERM)
            api.wait_exit(ctx.settings.shutdown_wait_s)
        if unreadable := unreadable_output(api):
            results.fail_all(["ex6.json_logs"], f"the log lines cannot all be judged: {unreadable}",
                             failure=decisive("the output outgrew its limit, every time"))
        else:
            _json_lines(between(api.output(), serving_since), results, api)


def _generated_ids(answers, results: Results, api) -> None:
    check = Check("ex6.request_id_generated")
    check.extend([observed.evidence() for observed in answers])
    bad = []
    for observed in answers:
        value = observed.header(contract.REQUEST_ID_HEADER)
        check.note("request", f"{observed.method} {observed.path}: X-Request-ID {value!r}")
        if value is None or not contract.GENERATED_REQUEST_ID.match(value):
            bad.append(f"{observed.path} -> {value!r}")
    results.judge(check, not bad, "every response carries X-Request-ID as req_ + 16 hex",
                  f"X-Request-ID missing or not req_ + 16 hex: {'; '.join(bad)}",
                  failure=NO_ANSWER if any(observed.status is None for observed in answers) else WRONG_ANSWER, api=api)


def _echoed(observed, echo: str, results: Results, api) -> None:
    check = Check("ex6.request_id_echoed")
    value = observed.header(contract.REQUEST_ID_HEADER)
    check.extend([observed.evidence()])
    check.note("request", f"sent X-Request-ID {echo!r}, got {value!r}")
    results.judge(check, value == echo, "the caller's X-Request-ID is echoed",
                  f"sent X-Request-ID {echo!r}, the response carried {value!r}", failure=unanswered(observed.status),
                  api=api)


def _source(line: LogLine) -> str:
    """The logger of a JSON line; a plain line stands for itself."""
    record = parse_json_object(line.text)
    return f"logger:{record.get('logger')}" if record is not None else f"text:{line.text}"


@dataclass(frozen=True)
class _Traced:
    """A generate sent with an X-Request-ID, and when its log window opened and closed."""

    observed: Observed
    echo: str  # the id sent
    request_id: str  # the id the response carried (the echo, when the header is missing)
    started: float
    finished: float


def _traced(serving: Serving, token: str | None) -> _Traced:
    echo = "probe-" + secrets.token_hex(6)
    started = time.time()
    observed = serving.probe.generate(token, headers={contract.REQUEST_ID_HEADER: echo})
    # Lines logged after the response still belong to it, and on a loaded machine they
    # arrive late: the window closes once the output has settled.
    settle(serving.api)
    return _Traced(observed, echo, observed.header(contract.REQUEST_ID_HEADER) or echo, started, time.time())


def _own_lines(window: list[LogLine], background: set[str], earlier: set[str]) -> list[LogLine]:
    """The lines of a request's window, less background sources and earlier requests' lines."""
    return [line for line in window
            if _source(line) not in background and not any(other in line.text for other in earlier)]


def _shape(line: LogLine) -> str:
    """What recurs between two requests' lines: the logger and the message with numbers, hex and
    ids blurred."""
    return f"{_source(line)}|{re.sub(r'[0-9a-f]{6,}|[0-9]+', '#', message_of(line))}"


def _ids_in_logs(traced: list[_Traced], output: list[LogLine], quiet: list[LogLine], earlier: set[str],
                 results: Results, api) -> None:
    check = Check("ex6.request_id_in_logs")
    first, second = traced
    window = between(output, first.started, first.finished)
    window_again = between(output, second.started, second.finished)
    # A request's lines are found by its id first, wherever they arrived (a loaded machine
    # delivers some after the next request began), and by time only as a second signal.
    carrying = [line for line in between(output, first.started) if first.request_id in line.text]
    check.extend([as_evidence(carrying, f"lines carrying the request's id {first.request_id}"),
                  as_evidence(window, f"lines written while request {first.request_id} ran"),
                  as_evidence(window_again, f"lines written while the same request, id {second.request_id}, ran again")])
    # Not lines of the request: uvicorn's access line (written after the app returned,
    # outside the request's context), whatever also logged while no request ran, lines
    # carrying the id of an earlier request, and lines the identical second request did not
    # also write without its id (one-off background work finishing meanwhile).
    background = {_source(line) for line in quiet} | {"logger:uvicorn.access"}
    own = _own_lines(window, background, earlier)
    again = _own_lines(window_again, background, earlier | {first.request_id})
    recurring = {_shape(line) for line in again if second.request_id not in line.text}
    lacking = [line for line in own if first.request_id not in line.text and _shape(line) in recurring]
    settled = decisive("the output had settled when judged, and the request's lines were found by its id first")
    if not carrying and not own:
        # An empty window decides nothing: the request's lines may simply not have come yet.
        results.not_gradable(check.check_id, f"the API wrote no line for request {first.request_id}, even once its "
                                             "output settled: nothing to judge",
                             failure=marginal("an empty window decides nothing"))
    elif not carrying:
        results.judge(check, False, "", f"none of the {len(own)} lines the request wrote carries its id "
                                        f"{first.request_id}, e.g. {own[0].text[:120]!r}", failure=settled, api=api)
    elif lacking:
        results.judge(check, False, "", f"{len(lacking)} of {len(own)} lines of the request lack its id, "
                                        f"e.g. {lacking[0].text[:120]!r}", failure=settled, api=api)
    else:
        results.judge(check, True, f"all {len(own)} lines of the request carry {first.request_id}", "",
                      failure=settled, api=api)


def _json_lines(lines: list[LogLine], results: Results, api) -> None:
    check = Check("ex6.json_logs")
    problems: list[str] = []
    offenders: list[LogLine] = []
    for line in lines:
        record = parse_json_object(line.text)
        if record is None:
            problems.append("not JSON")
        else:
            missing = [name for name in _REQUIRED_FIELDS if name not in record]
            if missing:
                problems.append(f"missing {', '.join(missing)}")
            elif not is_iso8601(record["timestamp"]):
                problems.append("timestamp is not ISO 8601")
            else:
                continue
        offenders.append(line)
    check.extend([as_evidence(offenders or lines, f"{len(offenders)} of {len(lines)} lines are not structured")])
    complete = decisive("the process had ended, so its output was complete when judged")
    if not lines:
        results.judge(check, False, "", "the API wrote no log line at all while serving requests",
                      failure=complete, api=api)
    else:
        results.judge(check, not offenders, f"all {len(lines)} lines are JSON with timestamp, level, message",
                      f"{len(offenders)} of {len(lines)} lines are not JSON with timestamp, level, message "
                      f"(first: {problems[0] if problems else ''}: {offenders[0].text[:120]!r})" if offenders else "",
                      failure=complete, api=api)


def _no_print(ctx: ScenarioContext, results: Results) -> None:
    check = Check("ex6.no_print_calls")
    findings, unreadable = static.print_calls(ctx.checkout)
    for finding in findings[:10]:
        check.note("file", str(finding))
    for path in unreadable:
        check.note("file", f"{path}: could not be read token by token")
    api_problem = static.api_dir_problem(ctx.checkout)
    results.judge(check, api_problem is None and not findings and not unreadable, "no print() call in src/api",
                  api_problem if api_problem else
                  f"{len(findings)} print() call(s), first {findings[0]}" if findings else
                  f"could not parse {', '.join(unreadable)}", failure=decisive("the code says so"))
