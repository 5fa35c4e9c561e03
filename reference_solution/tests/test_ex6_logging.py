"""Exercise 6: JSON logs only, request ids generated/echoed and carried by log lines."""

import ast
import json
import os
import re
from pathlib import Path

import pytest


def _get(h, app, path, headers=None):
    async def go():
        async with h.client(app) as client:
            return await client.get(path, headers=headers or {})

    return h.run(go)


def test_request_id_generated(load_api, h):
    response = _get(h, load_api(), "/health")
    assert re.fullmatch(r"req_[0-9a-f]{16}", response.headers.get("x-request-id", ""))


def test_request_id_echoed(load_api, h):
    response = _get(h, load_api(), "/health", {"X-Request-ID": "caller-id-42"})
    assert response.headers.get("x-request-id") == "caller-id-42"


def _json_lines(text):
    for line in text.splitlines():
        if line.strip():
            yield line, json.loads(line)


@pytest.mark.slow
def test_every_output_line_is_json(lifecycle_run):
    assert lifecycle_run["healthy"]
    for stream in ("stdout", "stderr"):
        for line in lifecycle_run[stream].splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise AssertionError(f"non-JSON line on {stream}: {line!r}")
            assert {"timestamp", "level", "message"} <= set(record), line
    assert "🏃" not in lifecycle_run["stdout"]


@pytest.mark.slow
def test_log_lines_carry_the_request_id(lifecycle_run):
    records = [record for _, record in _json_lines(lifecycle_run["stdout"])]
    assert any(r.get("request_id") == "probe-gen-0002" for r in records)
    assert any(r.get("request_id") == "probe-health-0001" for r in records)
    for r in records:
        if "LLM" in r.get("message", ""):
            assert r.get("request_id") == "probe-gen-0002", r


def test_no_print_calls():
    src = Path(os.environ.get("API_SRC", Path(__file__).resolve().parents[1] / "src" / "api"))
    offenders = []
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(src)}:{node.lineno}")
    assert not offenders, offenders
