"""The build's proxy to the package indexes, run as the program its container runs, against
a stand-in index on loopback: allowed destinations are tunnelled or forwarded, everything
else is refused, and each refusal or unreachable index is reported. No engine needed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from grader.stack.ports import free_port


class _Index(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps({"path": self.path, "connection": self.headers.get("Connection"),
                           "proxy_headers": [name for name in self.headers if name.lower().startswith("proxy-")]})
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def index() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class _Proxy:
    port: int
    closed: int  # allowed, but nothing listens there
    process: subprocess.Popen


@pytest.fixture()
def proxy(index: int) -> Iterator[_Proxy]:
    """The proxy on a free port, allowing the stand-in index and a port where nothing listens."""
    port, closed = free_port(), free_port()
    process = subprocess.Popen([sys.executable, "-m", "grader.stack.compose.index_proxy", f"--port={port}",
                                f"--allow=127.0.0.1:{index}", f"--allow=127.0.0.1:{closed}"],
                               stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _accepts(port):
            assert process.poll() is None and time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.1)
        yield _Proxy(port, closed, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _events(process: subprocess.Popen) -> list[dict]:
    process.terminate()
    output, _ = process.communicate(timeout=10)
    return [json.loads(line) for line in output.splitlines()]


def _connect(port: int, target: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        return conn.recv(4096)


def test_an_allowed_index_is_tunnelled_and_forwarded(index, proxy):
    port = proxy.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"CONNECT 127.0.0.1:{index} HTTP/1.1\r\n\r\n".encode())
        assert conn.recv(4096).startswith(b"HTTP/1.1 200 ")
        conn.sendall(b"GET /simple/six/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.0 200") and b'"path": "/simple/six/"' in reply

    with httpx.Client(proxy=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
        forwarded = client.get(f"http://127.0.0.1:{index}/debian/dists/bookworm/Release?x=1",
                               headers={"Proxy-Authorization": "Basic c2VjcmV0"})
    assert forwarded.status_code == 200
    assert forwarded.json() == {"path": "/debian/dists/bookworm/Release?x=1", "connection": "close",
                                "proxy_headers": []}


def test_anything_else_is_refused_and_reported(index, proxy):
    port = proxy.port
    other = free_port()
    assert _connect(port, f"127.0.0.1:{other}").startswith(b"HTTP/1.1 403 ")
    assert _connect(port, f"localhost:{index}").startswith(b"HTTP/1.1 403 ")
    with httpx.Client(proxy=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
        assert client.get(f"http://127.0.0.1:{other}/").status_code == 403
        assert client.post(f"http://127.0.0.1:{index}/", content=b"x").status_code == 405
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /relative HTTP/1.1\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 400 ")
    assert [event for event in _events(proxy.process) if event["event"] == "refused"] == [
        {"event": "refused", "host": "127.0.0.1", "port": other},
        {"event": "refused", "host": "localhost", "port": index},
        {"event": "refused", "host": "127.0.0.1", "port": other},
    ]


def test_an_allowed_index_that_does_not_answer_is_reported_as_unreachable(proxy):
    assert _connect(proxy.port, f"127.0.0.1:{proxy.closed}").startswith(b"HTTP/1.1 502 ")
    unreachable = [event for event in _events(proxy.process) if event["event"] == "unreachable"]
    assert [(event["host"], event["port"]) for event in unreachable] == [("127.0.0.1", proxy.closed)]


def test_a_request_head_past_its_bound_is_dropped(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
        conn.sendall(b"CONNECT " + b"a" * 20_000 + b":443 HTTP/1.1\r\n\r\n")
        assert conn.recv(4096) == b""
    assert proxy.process.poll() is None  # the proxy serves on
