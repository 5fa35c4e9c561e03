"""The fault server (the compose stack's proxies container) run as a real process on loopback."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from grader.stack.base import Fault
from grader.stack.fault_server import FaultControl
from grader.stack.ports import free_port

TOKEN = "test-control-token"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def routes() -> Iterator[tuple[str, FaultControl, str]]:
    """A fault server with one route, ``web``, in front of a small HTTP server; yields the
    route's URL, the control client and the control API's URL."""
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    listen, control = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "grader.stack.fault_server", "--host=127.0.0.1",
                               f"--control-port={control}", f"--token={TOKEN}",
                               f"--route=web={listen}:127.0.0.1:{target.server_port}"])
    client = FaultControl(f"http://127.0.0.1:{control}", TOKEN)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{control}/health", headers={"Authorization": f"Bearer {TOKEN}"})
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and server.poll() is None, "the fault server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{listen}", client, f"http://127.0.0.1:{control}"
    finally:
        client.close()
        server.terminate()
        server.wait(10)
        target.shutdown()


def test_forwards_then_refuses_resets_and_recovers_on_command(routes):
    url, control, _ = routes
    assert httpx.get(url).text == "ok"
    control.set_fault("web", Fault.DOWN)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
    control.set_fault("web", Fault.RESET)
    with pytest.raises(httpx.TransportError):
        httpx.get(url)
    control.set_fault("web", Fault.SLOW, delay=0.5)
    started = time.monotonic()
    assert httpx.get(url).text == "ok"
    assert time.monotonic() - started >= 0.5
    control.set_fault("web", None)
    assert httpx.get(url).text == "ok"


def test_the_control_api_wants_the_token_and_a_known_route(routes):
    url, control, control_url = routes
    refused = httpx.put(f"{control_url}/faults/web", json={"fault": "down"})
    assert refused.status_code == 401
    assert httpx.get(url).text == "ok", "an unauthorised request changed nothing"
    with pytest.raises(httpx.HTTPStatusError) as unknown:
        control.set_fault("nowhere", Fault.HANG)
    assert unknown.value.response.status_code == 404
