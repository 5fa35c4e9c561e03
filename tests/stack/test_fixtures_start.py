"""The fixtures start as the manifest assumes: the starter (the handout made to start), the
reference and the second solution serve on the local stack; the handout does not, and its
failure names the first module the student has to write."""

from __future__ import annotations

import httpx
import pytest

from fixtures.build import build_fixture
from grader.cache import default_cache_root
from grader.stack.local import LocalBackend

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.mark.e2e  # an install and a start per fixture (the manifest grades them whole): minutes the ten-minute test command cannot spare; the long stage
@pytest.mark.release  # and beyond what CI can spare: run by hand before a release (README)
@pytest.mark.parametrize("name", ["starter", "reference", "second-solution"])
def test_the_fixture_serves(name, tmp_path):
    with LocalBackend(build_fixture(name), tmp_path, default_cache_root()) as backend:
        with backend.open_stack("start") as stack:
            api = stack.start_api()
            try:
                assert api.wait_until_serving(180), api.startup_failure_reason()
                assert httpx.get(f"{api.url}/health", timeout=10).json() == {"status": "alive"}
            finally:
                api.kill()


@pytest.mark.e2e  # an install and a start (CI's manifest batch grades the handout whole): the ten-minute command cannot spare it
@pytest.mark.release  # and beyond what CI can spare: run by hand before a release (README)
def test_the_handout_does_not_start_and_names_the_missing_module(tmp_path):
    with LocalBackend(build_fixture("handout"), tmp_path, default_cache_root()) as backend:
        with backend.open_stack("start") as stack:
            api = stack.start_api()
            try:
                assert not api.wait_until_serving(180)
                assert api.exit_code not in (None, 0)
                assert "config.logging_config" in api.startup_failure_reason()
            finally:
                api.kill()
