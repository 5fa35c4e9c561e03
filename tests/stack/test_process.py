"""LocalApiProcess with a throwaway ASGI app run by the grader's own interpreter."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import psutil
import pytest

from grader.stack.ports import free_port
from grader.stack.process import LocalApiProcess

pytestmark = pytest.mark.slow

# One app, its behaviour chosen by MODE: each mode is a way a submission misbehaves.
APP = r'''
import json, os, signal, subprocess, sys, threading

MODE = os.environ.get("MODE", "serve")
if MODE == "crash":
    import middleware.request_id  # noqa: a module the student never wrote
if MODE == "nosecret":
    print("starting", flush=True)
    sys.stderr.write("CRITICAL: JWT_SECRET_KEY is not set\n")
    sys.exit(1)

GRANDCHILD = """
import os, sys, time
os.setsid()  # escapes the process group, as a daemonising child would
with open(sys.argv[1], "a") as f: f.write(f"{os.getpid()}\\n")
time.sleep(600)
"""
CHILD = """
import os, subprocess, sys, time
with open(sys.argv[1], "a") as f: f.write(f"{os.getpid()}\\n")
subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1]])
time.sleep(600)
"""

def on_startup():
    if MODE == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # after uvicorn installed its handlers
    if MODE == "fork":
        subprocess.Popen([sys.executable, "-c", CHILD, os.environ["PIDS_FILE"], GRANDCHILD])
    if MODE == "flood":
        def flood():
            print("FIRST", flush=True)
            for i in range(200_000):
                sys.stdout.write(f"line {i}\n")
            sys.stdout.write("x" * 1_000_000 + "\n")  # one huge line
            sys.stdout.write("LAST\n")
            sys.stdout.flush()
        threading.Thread(target=flood, daemon=True).start()

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps(dict(os.environ)).encode() if scope["path"] == "/env" else b"{}"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
'''


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "api"
    directory.mkdir()
    (directory / "main.py").write_text(APP)
    return directory


@pytest.fixture
def start(app_dir: Path, tmp_path: Path) -> Iterator:
    started: list[LocalApiProcess] = []

    def _start(mode: str, **options: int) -> LocalApiProcess:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "MODE": mode,
            "PIDS_FILE": str(tmp_path / "pids"),
        }
        api = LocalApiProcess(Path(sys.executable), app_dir, env, free_port(), **options)
        started.append(api)
        return api

    yield _start
    for api in started:
        api.kill()


def test_serves_with_exactly_the_given_environment(start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_LEAK_CANARY", "must-not-leak")
    api = start("serve")

    assert api.wait_until_serving(20)
    seen = httpx.get(f"{api.url}/env", trust_env=False).json()

    assert "GRADER_LEAK_CANARY" not in seen and "VIRTUAL_ENV" not in seen
    assert seen["MODE"] == "serve" and seen["HOME"].endswith("/home")
    assert set(seen) <= {"PATH", "HOME", "LANG", "LC_ALL", "MODE", "PIDS_FILE", "LC_CTYPE"}
    assert api.started_at <= time.time() and api.exit_code is None
    assert any("Uvicorn running" in line.text for line in api.output())


def test_sigterm_stops_it_cleanly(start) -> None:
    api = start("serve")
    assert api.wait_until_serving(20)

    api.send_signal(signal.SIGTERM)

    assert api.wait_exit(15) in (0, -signal.SIGTERM)
    assert any("Shutting down" in line.text for line in api.output())


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("crash", "ModuleNotFoundError: No module named 'middleware'"),
        ("nosecret", "JWT_SECRET_KEY is not set"),
    ],
)
def test_early_exit_is_reported_with_its_reason(start, mode: str, expected: str) -> None:
    api = start(mode)
    began = time.monotonic()

    assert not api.wait_until_serving(30)

    assert time.monotonic() - began < 15  # returned on exit, not at the timeout
    assert api.exit_code not in (None, 0)
    reason = api.startup_failure_reason()
    assert reason.startswith(f"exited with code {api.exit_code}: ") and expected in reason
    assert "\n" not in reason


def test_kill_ends_a_process_that_ignores_sigterm(start) -> None:
    api = start("ignore_term")
    assert api.wait_until_serving(20)

    api.send_signal(signal.SIGTERM)
    assert api.wait_exit(2) is None

    api.kill()
    api.kill()  # idempotent
    assert api.exit_code == -signal.SIGKILL


def test_kill_leaves_no_descendant_even_a_detached_one(start, tmp_path: Path) -> None:
    api = start("fork")
    assert api.wait_until_serving(20)
    pids_file = tmp_path / "pids"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(pids_file.read_text().split() if pids_file.exists() else []) < 2:
        time.sleep(0.1)
    pids = [int(pid) for pid in pids_file.read_text().split()]
    assert len(pids) == 2
    assert os.getsid(pids[1]) != api.pid  # the grandchild really left the session

    api.kill()

    gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in pids if psutil.pid_exists(pid)], timeout=5)
    assert not alive
    assert not psutil.pid_exists(api.pid)


def test_flooding_output_is_capped_keeping_head_and_tail(start) -> None:
    limit = 200_000
    api = start("flood", output_limit_bytes=limit)
    assert api.wait_until_serving(20)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(line.text == "LAST" for line in api.output()):
        time.sleep(0.2)

    texts = [line.text for line in api.output()]

    assert "LAST" in texts and "line 199999" in texts
    assert texts[0].startswith("INFO") and "FIRST" in texts  # the head survives
    assert api.dropped_bytes > 1_000_000
    assert sum(len(t) for t in texts) <= limit
    stamps = [line.at for line in api.output()]
    assert stamps == sorted(stamps)
    json.dumps(texts)  # plain strings, whatever the bytes were
