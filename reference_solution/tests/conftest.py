"""Fixtures for the reference solution's tests.

The service's source dir comes from env API_SRC (default: reference_solution/src/api), so
the same tests run against the starter tree. The service's flat modules (config, main,
services, ...) are imported into this process: every import is undone after each test
(sys.path, sys.modules, os.environ and logging are restored) so nothing leaks into other
test modules of the project.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
API_SRC = Path(os.environ.get("API_SRC", REPO / "reference_solution" / "src" / "api")).resolve()
STRONG_SECRET = "8f3c2a9e61b74d05a1c9e7f2b3d4a5c6e7f8091a2b3c4d5e"
UNREACHABLE = "http://127.0.0.1:9"  # discard port: connection refused
# How long a spawned API may take to answer: the imports alone take 15-20 s on 2 idle cores
# (CONTRACT.md), several times that on a shared, loaded machine. A bound, not a target.
STARTUP_S = 90.0


# ---------------------------------------------------------------- fake upstream


class FakeUpstream:
    """A loopback OpenAI-compatible LLM proxy (also answers GET health probes).

    `script` is a queue of actions for /chat/completions: dicts with `status`, `delay`,
    `hang`, `headers`, `body`; when empty, `default` is used. Every completion call is
    journaled. Error answers carry `x-should-retry: false` so the OpenAI SDK's own
    retries (the starter's) do not multiply calls and slow the starter run down.
    """

    def __init__(self) -> None:
        self.script: queue.Queue = queue.Queue()
        self.default: dict = {"status": 200}
        self.journal: list[dict] = []
        self.release = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: dict | str, headers: dict | None = None) -> None:
                data = (json.dumps(body) if not isinstance(body, str) else body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "groq-llama3-8b", "object": "model"}]})
                else:
                    self._send(200, {"status": "ok"})

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": "not found"})
                    return
                try:
                    action = upstream.script.get_nowait()
                except queue.Empty:
                    action = upstream.default
                upstream.journal.append({"path": self.path, "t": time.monotonic(), "body": raw.decode(errors="replace")})
                if action.get("hang"):
                    upstream.release.wait(60)
                    self.close_connection = True
                    return
                if action.get("delay"):
                    time.sleep(action["delay"])
                status = action.get("status", 200)
                if status == 200:
                    model = json.loads(raw or b"{}").get("model", "groq-llama3-8b")
                    self._send(200, {
                        "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "Paris is the capital of France."}}],
                        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
                    }, action.get("headers"))
                else:
                    body = action.get("body") or {"error": {"message": f"upstream error {status}", "type": "error", "code": status}}
                    self._send(status, body, {"x-should-retry": "false", **(action.get("headers") or {})})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, client_address: None  # clients hanging up are expected
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def push(self, *actions: dict) -> None:
        for action in actions:
            self.script.put(action)

    def completions(self) -> int:
        return len(self.journal)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream():
    fake = FakeUpstream()
    yield fake
    fake.close()


# ---------------------------------------------------------------- in-process app


@pytest.fixture(scope="session")
def trace_fallback_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("traces") / "traces_fallback.jsonl"


def base_env(upstream_url: str, fallback: Path) -> dict[str, str]:
    return {
        "JWT_SECRET_KEY": STRONG_SECRET,
        "LITELLM_URL": upstream_url,
        "LITELLM_API_KEY": "sk-test",
        "QDRANT_URL": UNREACHABLE,
        "MLFLOW_TRACKING_URI": UNREACHABLE,
        "TEI_URL": UNREACHABLE,
        "RETRY_BASE_DELAY_SECONDS": "0.01",
        "RETRY_MIN_ATTEMPT_SECONDS": "0.2",
        "CIRCUIT_RECOVERY_SECONDS": "0.5",
        "HEALTH_CACHE_SECONDS": "0",
        "HEALTH_CHECK_TIMEOUT_SECONDS": "1",
        "TRACE_FALLBACK_PATH": str(fallback),
        "LOG_LEVEL": "INFO",
    }


def _api_modules() -> list[str]:
    found = []
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None) or ""
        paths = list(getattr(module, "__path__", []) or [])
        if location.startswith(str(API_SRC)) or any(str(p).startswith(str(API_SRC)) for p in paths):
            found.append(name)
    return found


@pytest.fixture
def load_api(upstream, trace_fallback_path, monkeypatch):
    """Factory: import the service's `main` with the given env overrides; returns the ASGI app."""
    saved_env = dict(os.environ)
    saved_path = list(sys.path)
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved_named = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate, logging.getLogger(n).level)
                   for n in ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpx2", "httpcore", "openai", "mlflow")}

    def load(**overrides: str):
        for name in _api_modules():
            del sys.modules[name]
        env = base_env(upstream.url, trace_fallback_path)
        env.update({k: v for k, v in overrides.items() if v is not None})
        for key in [k for k, v in overrides.items() if v is None]:
            env.pop(key, None)
            os.environ.pop(key, None)
        os.environ.update(env)
        if str(API_SRC) not in sys.path:
            sys.path.insert(0, str(API_SRC))
        import importlib

        main = importlib.import_module("main")
        return main.app

    yield load

    tracing = sys.modules.get("services.tracing")
    executor = getattr(tracing, "_executor", None)
    if executor is not None:
        # Queued traces must not outlive the test's environment: once the MLflow env
        # (0 retries, 3 s timeout) is restored away, a late MLflow call would retry for
        # minutes and the interpreter would wait for it at exit.
        stopper = threading.Thread(target=executor.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True)
        stopper.start()
        stopper.join(15)
    for name in _api_modules():
        del sys.modules[name]
    sys.path[:] = saved_path
    os.environ.clear()
    os.environ.update(saved_env)
    root.handlers[:] = saved_root[0]
    root.setLevel(saved_root[1])
    for name, (handlers, propagate, level) in saved_named.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.setLevel(level)
    logging.captureWarnings(False)


def run_async(fn, timeout: float = 15.0):
    """Run `await fn()` in a fresh event loop in its own thread, bounded by `timeout`.

    A starter that blocks its event loop (sync SDK call) cannot hang the test run: the
    thread is abandoned and the test fails with a clear message.
    """
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = asyncio.run(fn())
        except BaseException as exc:  # handed back to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"the call did not finish within {timeout}s (blocked or unbounded)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def client_for(app, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 4321)),
                             base_url="http://testserver", timeout=60)


async def bearer(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/auth/login", json={"username": "admin", "password": "secret123"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


_counter = iter(range(1, 10**9))


def unique_prompt(topic: str = "capital of France") -> str:
    return f"Please tell me about the {topic}, question number {next(_counter)} at {time.time_ns()}"


def body(prompt: str | None = None, model: str = "groq-llama3-8b") -> dict:
    return {"prompt": prompt or unique_prompt(), "model": model, "temperature": 0.2, "max_tokens": 50}


# ---------------------------------------------------------------- real uvicorn processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiProcess:
    """`python -m uvicorn main:app` run from the service's dir, output captured to files."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = workdir / f"api-{self.port}.out"
        self.stderr_path = workdir / f"api-{self.port}.err"
        full_env = {k: v for k, v in os.environ.items() if k not in base_env("", Path("x"))}
        full_env.update(env)
        full_env["PYTHONUNBUFFERED"] = "1"
        self.spawned = time.monotonic()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=API_SRC, env=full_env, stdout=out, stderr=err,
            )

    def wait_healthy(self, timeout: float = STARTUP_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def output(self) -> tuple[str, str]:
        return (self.stdout_path.read_text(errors="replace"), self.stderr_path.read_text(errors="replace"))


@pytest.fixture
def spawn_api(tmp_path, trace_fallback_path):
    started: list[ApiProcess] = []

    def spawn(upstream_url: str, **overrides: str) -> ApiProcess:
        env = base_env(upstream_url, trace_fallback_path)
        env.update({k: v for k, v in overrides.items() if v is not None})
        for key in [k for k, v in overrides.items() if v is None]:
            env.pop(key, None)
        process = ApiProcess(env, tmp_path)
        started.append(process)
        return process

    yield spawn
    for process in started:
        process.kill()


@pytest.fixture
def h():
    """The helpers above, for test modules (conftest is not importable by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(run=run_async, client=client_for, bearer=bearer, prompt=unique_prompt, body=body,
                           secret=STRONG_SECRET)


@pytest.fixture(scope="session")
def lifecycle_run(tmp_path_factory, trace_fallback_path):
    """One real uvicorn lifecycle shared by the shutdown and logging tests.

    Start; GET /health with a caller request id; a generate whose upstream takes 2 s;
    SIGTERM while it is in flight; wait for the exit. Returns what was observed.
    """
    fake = FakeUpstream()
    fake.default = {"status": 200, "delay": 2.0}
    workdir = tmp_path_factory.mktemp("lifecycle")
    env = base_env(fake.url, trace_fallback_path)
    process = ApiProcess(env, workdir)
    observed: dict = {"healthy": process.wait_healthy()}
    try:
        if observed["healthy"]:
            observed["health"] = httpx.get(f"{process.url}/health", headers={"X-Request-ID": "probe-health-0001"})
            token = httpx.post(f"{process.url}/auth/login", json={"username": "admin", "password": "secret123"}).json()["access_token"]
            result: dict = {}

            def call():
                try:
                    result["response"] = httpx.post(
                        f"{process.url}/llm/generate", json=body(),
                        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "probe-gen-0002"}, timeout=30)
                except httpx.HTTPError as exc:
                    result["error"] = exc

            caller = threading.Thread(target=call, daemon=True)
            caller.start()
            deadline = time.monotonic() + 5
            while fake.completions() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            process.terminate()
            sent = time.monotonic()
            observed["exit_code"] = process.wait_exit(15)
            observed["exit_after"] = time.monotonic() - sent
            caller.join(10)
            observed["generate"] = result
    finally:
        process.kill()
        fake.close()
    observed["stdout"], observed["stderr"] = process.output()
    return observed
