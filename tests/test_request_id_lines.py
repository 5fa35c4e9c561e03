"""ex6.request_id_in_logs: which lines written while a request ran are the request's own.

The scenario sends the same traced request twice; these cases feed its judgement the lines
a real API writes (JSON lines as the reference's logger writes them), at known times.
"""

from __future__ import annotations

import json

from grader.models import CheckStatus, Failure
from grader.scenarios.ex6_logging import CHECKS, _ids_in_logs, _Traced
from grader.scenarios.http import Observed
from grader.scenarios.recorder import Results
from grader.stack.base import LogLine

FIRST, SECOND = "probe-aaaaaaaaaaaa", "probe-bbbbbbbbbbbb"


def _line(at: float, logger: str, message: str, request_id: str | None = None) -> LogLine:
    record = {"timestamp": "2026-11-27T00:00:00+00:00", "level": "INFO", "logger": logger, "message": message}
    if request_id:
        record["request_id"] = request_id
    return LogLine(at=at, stream="stdout", text=json.dumps(record))


def _judge(lines: list[LogLine]):
    traced = [_Traced(Observed(method="POST", path="/llm/generate", status=200, elapsed_s=1.0), request_id, request_id,
                      started, started + 5)
              for request_id, started in ((FIRST, 10.0), (SECOND, 20.0))]
    results = Results("ex6", CHECKS)
    _ids_in_logs(traced, lines, [], set(), results, api=None)
    return next(r for r in results.finish() if r.check_id == "ex6.request_id_in_logs")


def _request_lines(request_id: str, start: float, with_id: bool = True) -> list[LogLine]:
    return [_line(start + 1, "api.llm", "generating with gpt-4o-mini", request_id),
            _line(start + 2, "api.llm", "generated 42 tokens in 1.3 s", request_id if with_id else None)]


def test_every_line_carrying_the_id_passes():
    assert _judge(_request_lines(FIRST, 10) + _request_lines(SECOND, 20)).status is CheckStatus.PASSED


def test_a_one_off_background_line_in_one_window_is_not_the_requests():
    one_off = _line(13.5, "api.tracing", "MLflow run started")
    result = _judge(_request_lines(FIRST, 10) + [one_off] + _request_lines(SECOND, 20))
    assert result.status is CheckStatus.PASSED, result.reason


def test_a_line_of_every_request_lacking_the_id_fails():
    result = _judge(_request_lines(FIRST, 10, with_id=False) + _request_lines(SECOND, 20, with_id=False))
    assert result.status is CheckStatus.FAILED
    assert result.reason.startswith("1 of 2 lines of the request lack its id")


def test_no_line_carrying_the_id_fails():
    lines = [_line(11, "api.llm", "generating"), _line(21, "api.llm", "generating")]
    result = _judge(lines)
    assert result.status is CheckStatus.FAILED and "carries its id" in result.reason


def test_a_line_carrying_the_id_that_arrives_during_the_next_request_is_still_the_requests():
    # On a loaded machine the request's own line reached the grader after its window had closed.
    late = [_line(21.5, "api.llm", "generated 42 tokens in 1.3 s", FIRST)]
    result = _judge(late + _request_lines(SECOND, 20))
    assert result.status is CheckStatus.PASSED, result.reason


def test_an_empty_window_decides_nothing():
    result = _judge(_request_lines(SECOND, 20))
    assert result.status is CheckStatus.NOT_GRADABLE and result.failure is Failure.MARGINAL, result.reason
