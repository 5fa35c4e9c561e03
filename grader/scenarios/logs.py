"""Reading what the API wrote: JSON parsing, time windows and message patterns."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any, Iterable, Sequence

from grader import contract
from grader.models import Evidence
from grader.stack.base import ApiProcess, LogLine

_LINE_EXCERPT = 300


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The line as a JSON object, or None when it is anything else."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested beyond the parser's depth
        return None
    return value if isinstance(value, dict) else None


def is_iso8601(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def message_of(line: LogLine) -> str:
    """The human message of a line: the ``message`` field of a JSON line, else the text."""
    record = parse_json_object(line.text)
    if record is not None and isinstance(record.get("message"), str):
        return record["message"]
    return line.text


def between(lines: Iterable[LogLine], start: float, end: float = float("inf")) -> list[LogLine]:
    return [line for line in lines if start <= line.at <= end and line.text.strip()]


def is_uvicorn_shutdown_line(line: LogLine) -> bool:
    text = message_of(line).lower()
    return any(message in text for message in contract.UVICORN_SHUTDOWN_MESSAGES)


def matching(lines: Iterable[LogLine], pattern: re.Pattern[str]) -> list[LogLine]:
    """Lines whose message matches, uvicorn's own shutdown lines excluded."""
    return [line for line in lines if not is_uvicorn_shutdown_line(line) and pattern.search(message_of(line))]


def settle(api: ApiProcess, quiet_s: float = 1.0, limit_s: float = 10.0) -> bool:
    """Wait until the API has written nothing for ``quiet_s`` (at most ``limit_s``); whether it
    settled. Lines are stamped when the grader reads them: on a loaded machine a request's own
    lines arrive after its answer, so a window is judged only once the output is quiet."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        lines = api.output()
        if not lines or time.time() - lines[-1].at >= quiet_s:
            return True
        time.sleep(0.2)
    return False


def unreadable_output(api: ApiProcess) -> str | None:
    """Why the API's log lines cannot be judged (a limit it hit, e.g. its output was cut), or None.

    A submission that floods its output loses lines past the output limit: its log-based
    checks then fail with the limit named, every time, instead of by luck of what was kept.
    """
    return api.limit_hit()


def as_evidence(lines: Sequence[LogLine], summary: str, limit: int = 12) -> Evidence:
    shown = "\n".join(line.text[:_LINE_EXCERPT] for line in lines[:limit])
    more = f"\n... {len(lines) - limit} more lines" if len(lines) > limit else ""
    return Evidence(kind="log", summary=summary, detail=shown + more)
