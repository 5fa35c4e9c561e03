"""The reference submission installs, starts and serves with every protection on, and is
graded by a stack phase run in its own network namespace."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fixtures.build import build_fixture
from grader.clock import GradingClock
from grader.models import CheckStatus
from grader.sandbox.limits import Limits
from grader.stack.local import LocalBackend
from grader.stack_phase import grade_dynamic

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_reference_installs_starts_and_serves_in_the_sandbox(tmp_path, cache, full_isolation):
    with LocalBackend(build_fixture("reference"), tmp_path / "work", cache, isolation=full_isolation) as backend:
        assert backend.venv.ok, backend.venv.log[-2000:]
        with backend.open_stack("sandboxed") as stack:
            api = stack.start_api({"HEALTH_CACHE_SECONDS": "0", "HEALTH_CHECK_TIMEOUT_SECONDS": "1"})
            assert api.wait_until_serving(90), api.startup_failure_reason()
            assert httpx.get(f"{api.url}/health", timeout=10).status_code == 200
            detailed = httpx.get(f"{api.url}/health/detailed", timeout=10)
            assert detailed.status_code == 200, detailed.text
            assert api.limit_hit() is None


@pytest.mark.e2e  # ex1 graded in the sandbox (CI's manifest batch grades the reference whole): the ten-minute command cannot spare it
@pytest.mark.release  # and beyond what CI can spare: run by hand before a release (README)
def test_reference_passes_its_config_checks_graded_in_the_stack_namespace(tmp_path, cache, full_isolation):
    finished = []
    clock = GradingClock.starting_now(Limits().scenario_s, Limits().submission_s)
    checks = grade_dynamic(build_fixture("reference"), tmp_path / "work", cache, ["ex1"], {}, clock, full_isolation,
                           lambda exercise, results: finished.append(exercise))
    assert finished == ["ex1"]
    assert checks and all(check_id.startswith("ex1.") for check_id in checks)
    failing = {c.check_id: c.reason for c in checks.values() if c.status is not CheckStatus.PASSED}
    assert not failing, failing
