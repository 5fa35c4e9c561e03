"""The fault proxy, observed by an httpx client in front of a small HTTP server."""

from __future__ import annotations

import concurrent.futures
import http.server
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from grader.stack.background import BackgroundLoop
from grader.stack.base import Fault
from grader.stack.faults import FaultProxy

SLOW_ANSWER = 1.0  # seconds the target takes on /slow: long enough to break it mid-flight


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real dependencies

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(SLOW_ANSWER)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the proxy breaks connections on purpose: no tracebacks for that


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[str, int]]:
    server = _Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "127.0.0.1", server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture()
def proxy(target: tuple[str, int]) -> Iterator[FaultProxy]:
    proxy = FaultProxy(*target)
    yield proxy
    proxy.close()


def _in_flight(proxy: FaultProxy, timeout: float = 5.0) -> concurrent.futures.Future[httpx.Response]:
    """A /slow request through ``proxy`` running in another thread, given time to start."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(httpx.get, f"{proxy.url}/slow", timeout=timeout)
    pool.shutdown(wait=False)
    time.sleep(0.3)
    return future


def _fails_within(future: concurrent.futures.Future[httpx.Response], error: type[Exception], limit: float) -> None:
    with pytest.raises(error):
        future.result(timeout=limit)


def _is_reset(error: httpx.TransportError) -> bool:
    # httpx files ECONNRESET under ConnectError, ReadError or WriteError depending on timing.
    return "reset by peer" in str(error)


def _timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_forwards_normally_over_one_connection(proxy: FaultProxy) -> None:
    with httpx.Client(base_url=proxy.url) as client:
        assert [client.get("/").text for _ in range(3)] == ["ok"] * 3


def test_down_refuses_then_listens_again_on_the_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    proxy.set_fault(Fault.DOWN)
    with pytest.raises(httpx.ConnectError):
        httpx.get(proxy.url)
    proxy.set_fault(None)
    assert proxy.port == port and httpx.get(proxy.url).text == "ok"


def test_down_resets_open_connections(proxy: FaultProxy) -> None:
    future = _in_flight(proxy)
    proxy.set_fault(Fault.DOWN)
    _fails_within(future, httpx.TransportError, SLOW_ANSWER)
    assert _is_reset(future.exception())  # type: ignore[arg-type]


def test_hang_answers_nothing_until_cleared(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.HANG)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(proxy.url, timeout=0.5)
    proxy.set_fault(None)
    assert httpx.get(proxy.url).text == "ok"


def test_hang_stalls_open_connections(proxy: FaultProxy) -> None:
    future = _in_flight(proxy, timeout=SLOW_ANSWER + 0.5)
    proxy.set_fault(Fault.HANG)
    _fails_within(future, httpx.ReadTimeout, SLOW_ANSWER + 1.5)
    proxy.set_fault(None)


def test_slow_delays_the_answer_once_per_round_trip(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.SLOW, delay=0.5)
    elapsed = _timed(lambda: httpx.get(proxy.url).raise_for_status())
    assert 0.5 <= elapsed < 1.2
    proxy.set_fault(None)
    assert _timed(lambda: httpx.get(proxy.url).raise_for_status()) < 0.4


def test_reset_resets_new_and_open_connections(proxy: FaultProxy) -> None:
    future = _in_flight(proxy)
    proxy.set_fault(Fault.RESET)
    _fails_within(future, httpx.TransportError, SLOW_ANSWER)
    assert _is_reset(future.exception())  # type: ignore[arg-type]
    with pytest.raises(httpx.TransportError) as caught:
        httpx.get(proxy.url)
    assert _is_reset(caught.value)
    proxy.set_fault(None)
    assert httpx.get(proxy.url).text == "ok"


def test_set_fault_is_safe_from_many_threads(proxy: FaultProxy) -> None:
    faults = [Fault.DOWN, Fault.HANG, Fault.SLOW, Fault.RESET, None] * 8
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(proxy.set_fault, faults))
    proxy.set_fault(None)
    assert httpx.get(proxy.url).text == "ok"


def test_proxies_share_a_loop_and_close_frees_their_ports(target: tuple[str, int]) -> None:
    loop = BackgroundLoop()
    first, second = FaultProxy(*target, loop=loop), FaultProxy.in_front_of("http://%s:%d" % target, loop=loop)
    first.set_fault(Fault.DOWN)
    assert httpx.get(second.url).text == "ok"
    first.close()
    second.close()
    loop.close()
    for closed in (first, second):
        with pytest.raises(httpx.ConnectError):
            httpx.get(closed.url)


def test_a_closed_proxy_refuses_new_faults(target: tuple[str, int]) -> None:
    proxy = FaultProxy(*target)
    proxy.close()
    with pytest.raises(RuntimeError, match="closed"):
        proxy.set_fault(None)
    with pytest.raises(httpx.ConnectError):
        httpx.get(proxy.url)
