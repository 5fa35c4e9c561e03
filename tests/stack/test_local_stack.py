"""The local stack with the reference solution: real processes, real HTTP, faults seen by the API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import httpx
import psutil
import pytest

from fixtures.build import build_fixture
from grader.stack.base import Fault, ScriptedReply, Service, SubmissionUnrunnable
from grader.stack.local import LocalBackend, LocalStack

pytestmark = pytest.mark.slow

DEPENDENCIES = ("qdrant", "litellm", "mlflow", "tei")
_FAST_READINESS = {"HEALTH_CACHE_SECONDS": "0", "HEALTH_CHECK_TIMEOUT_SECONDS": "1"}


def _children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> Iterator[LocalBackend]:
    work = tmp_path_factory.mktemp("work")
    with LocalBackend(build_fixture("reference"), work, tmp_path_factory.mktemp("cache")) as backend:
        yield backend


def _serving(stack: LocalStack, env=None):
    api = stack.start_api({**_FAST_READINESS, **(env or {})})
    assert api.wait_until_serving(90), api.startup_failure_reason()
    return api


def _readiness(api) -> dict[str, bool]:
    body = httpx.get(f"{api.url}/health/detailed", timeout=10).json()
    return {name: body["checks"][name]["healthy"] for name in DEPENDENCIES}


def _wait_readiness(api, expected: bool, timeout: float = 20) -> dict[str, bool]:
    deadline = time.monotonic() + timeout
    while True:
        seen = _readiness(api)
        if all(state is expected for state in seen.values()) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def test_every_dependency_is_reachable_from_the_api(backend):
    with backend.open_stack("reachable") as stack:
        api = _serving(stack)
        assert _readiness(api) == {name: True for name in DEPENDENCIES}
        assert httpx.get(f"{api.url}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("fault", [Fault.DOWN, Fault.HANG, Fault.SLOW, Fault.RESET])
def test_each_fault_on_each_dependency_is_seen_by_the_api_and_cleared(backend, fault):
    with backend.open_stack(f"fault-{fault}") as stack:
        api = _serving(stack)
        for service in Service:
            stack.inject_fault(service, fault, delay=3.0)  # slow: beyond the API's 1 s check timeout
        assert _wait_readiness(api, False) == {name: False for name in DEPENDENCIES}
        assert httpx.get(f"{api.url}/health", timeout=5).status_code == 200  # liveness unaffected
        for service in Service:
            stack.clear_fault(service)
        assert _wait_readiness(api, True) == {name: True for name in DEPENDENCIES}


def test_journal_records_the_scripted_retries(backend):
    with backend.open_stack("journal") as stack:
        api = _serving(stack)
        token = httpx.post(f"{api.url}/auth/login", json={"username": "admin", "password": "secret123"},
                           timeout=10).json()["access_token"]
        stack.llm.script([ScriptedReply(status=503), ScriptedReply(status=503)])
        response = httpx.post(f"{api.url}/llm/generate", headers={"Authorization": f"Bearer {token}"},
                              json={"prompt": "Please greet the journal reader warmly", "model": "gpt-4o-mini",
                                    "temperature": 0.1, "max_tokens": 20}, timeout=60)
        calls = [entry for entry in stack.llm.journal() if entry.path.endswith("/chat/completions")]
        assert response.status_code == 200
        assert [entry.reply for entry in calls] == ["503", "503", "200"]
        assert calls[2].at - calls[1].at > calls[1].at - calls[0].at  # exponential backoff


def test_two_stacks_run_at_once_and_nothing_outlives_them(backend):
    before = _children()
    with backend.open_stack("one") as one, backend.open_stack("two") as two:
        first, second = _serving(one), _serving(two)
        assert first.url != second.url
        assert one.service_url(Service.LLM) != two.service_url(Service.LLM)
        one.inject_fault(Service.QDRANT, Fault.DOWN)  # a fault never crosses stacks
        assert _wait_readiness(first, False)["qdrant"] is False
        assert _readiness(second)["qdrant"] is True
    assert _children() - before == set()


def test_an_exception_inside_the_stack_still_stops_everything(backend):
    before = _children()
    with pytest.raises(RuntimeError):
        with backend.open_stack("boom") as stack:
            _serving(stack)
            raise RuntimeError("a scenario crashed")
    assert _children() - before == set()


@pytest.mark.parametrize("name, reason", [
    ("broken-import", "No module named"),
    ("broken-syntax", "SyntaxError"),
    ("exits-at-once", "code 3"),
])
@pytest.mark.e2e  # an install and a start per fixture (the manifest grades them again): minutes the ten-minute test command cannot spare; the long stage
@pytest.mark.release  # and beyond what CI can spare: run by hand before a release (README)
def test_broken_fixtures_say_why_they_do_not_serve(tmp_path, name, reason):
    before = _children()
    with LocalBackend(build_fixture(name), tmp_path / "work", tmp_path / "cache") as backend:
        with backend.open_stack(name) as stack:
            api = stack.start_api()
            assert not api.wait_until_serving(60)
            assert reason in api.startup_failure_reason()
    assert _children() - before == set()


@pytest.mark.e2e  # a whole start-up wait: minutes the ten-minute test command cannot spare; the long stage
@pytest.mark.release  # and beyond what CI can spare: run by hand before a release (README)
def test_an_api_that_never_binds_is_reported_and_killed(tmp_path):
    before = _children()
    with LocalBackend(build_fixture("never-binds"), tmp_path / "work", tmp_path / "cache") as backend:
        with backend.open_stack("never") as stack:
            api = stack.start_api()
            assert not api.wait_until_serving(15)
            assert api.startup_failure_reason().startswith("still running")
    assert _children() - before == set()


@pytest.mark.parametrize("name, reason", [
    ("no-src-api", "src/api/main.py is missing"),
    ("broken-requirement", "this-package-does-not-exist"),
])
def test_unrunnable_submissions_get_one_line_reasons(tmp_path, name, reason):
    with LocalBackend(build_fixture(name), tmp_path / "work", tmp_path / "cache") as backend:
        with pytest.raises(SubmissionUnrunnable, match=reason) as raised:
            backend.open_stack("any")
    assert "\n" not in str(raised.value)


def test_an_unparseable_requirements_file_is_the_students_fault(tmp_path):
    checkout = tmp_path / "repo"
    (checkout / "src" / "api").mkdir(parents=True)
    (checkout / "src" / "api" / "main.py").write_text("app = None\n")
    (checkout / "src" / "api" / "requirements.txt").write_text("fastapi >=>= 1\n")
    with LocalBackend(checkout, tmp_path / "work", tmp_path / "cache") as backend:
        with pytest.raises(SubmissionUnrunnable, match="requirements"):
            backend.open_stack("any")


def test_the_api_sees_none_of_the_graders_environment(backend, monkeypatch):
    monkeypatch.setenv("GRADER_TEST_SECRET", "do-not-leak-4242")
    with backend.open_stack("env") as stack:
        api = stack.start_api()
        names = {item.split("=", 1)[0] for item in Path(f"/proc/{api.pid}/environ").read_bytes().decode().split("\0")}
        assert "GRADER_TEST_SECRET" not in names
        assert {"PATH", "HOME", "JWT_SECRET_KEY", "LITELLM_URL"} <= names
