"""ex5's readiness finder, against real HTTP servers on 127.0.0.1: a route that is missing is asked
once, one that exists is polled until it says what is waited for."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from grader.scenarios.ex5_health import Readiness
from grader.scenarios.http import Probe


@contextmanager
def _server(readiness_path: str | None, degraded_after: int = 0):
    """A server whose ``readiness_path`` answers 200, then 503 from its ``degraded_after``-th
    request on; every other path answers 404. Yields (base URL, requests to each path)."""
    asked: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked[self.path] = asked.get(self.path, 0) + 1
            if self.path != readiness_path:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            degraded = asked[self.path] > degraded_after
            body = json.dumps({"status": "degraded" if degraded else "healthy",
                               "checks": {"qdrant": not degraded}}).encode()
            self.send_response(503 if degraded else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_without_a_readiness_route_readiness_is_asked_once_not_waited_on():
    with _server(None) as (url, asked), Probe(url) as probe:
        readiness = Readiness(SimpleNamespace(probe=probe), None, timeout=5)
        polled = readiness.until(lambda observed: observed.status == 503, timeout=30, poll_s=0.1)
    assert readiness.missing and not polled.satisfied and polled.last.status == 404
    assert asked["/health/detailed"] == 2  # found missing, then asked once


def test_a_readiness_route_is_found_and_polled_until_it_says_degraded():
    with _server("/system/health/detailed", degraded_after=3) as (url, asked), Probe(url) as probe:
        readiness = Readiness(SimpleNamespace(probe=probe), None, timeout=5)
        polled = readiness.until(lambda observed: observed.status == 503, timeout=30, poll_s=0.05)
    assert not readiness.missing and readiness.path == "/system/health/detailed"
    assert polled.satisfied and polled.last.json["checks"] == {"qdrant": False}
    assert asked["/system/health/detailed"] == 4  # found (1), then 200, 200, 503
