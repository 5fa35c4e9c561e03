"""A compose stack on the real Docker engine: the reference's API in a container, signals,
faults and logs, and nothing left behind. Skipped with the reason where there is no engine."""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fixtures.build import build_fixture
from grader import contract
from grader.errors import StackError
from grader.sandbox.limits import Limits
from grader.scenarios.http import Probe
from grader.stack.base import Fault, ScriptedReply, Service, SubmissionUnrunnable
from grader.stack.compose.backend import ComposeBackend
from grader.stack.compose.engine import docker_client, engine_problem
from grader.stack.compose.images import ensure_images, missing_requirements
from grader.stack.compose.project import ComposeProject
from grader.stack.compose.stack import service_urls

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _skip_without_engine() -> None:
    problem = engine_problem() or missing_requirements()
    if problem:
        pytest.skip(f"compose backend unavailable here: {problem}")


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    _skip_without_engine()
    with ComposeBackend(build_fixture("reference"), tmp_path_factory.mktemp("compose"), Limits()) as opened:
        yield opened


def engine_objects() -> dict[str, list[str]]:
    """The containers, networks and volumes of grading projects (``grade-*``) that exist now."""
    client = docker_client()

    def owned(labels: dict | None) -> bool:
        return (labels or {}).get("com.docker.compose.project", "").startswith("grade-")

    return {
        # sparse: the list alone, no inspect of each container (one may vanish between the two)
        "containers": sorted(c.attrs["Names"][0].lstrip("/") for c in client.containers.list(all=True, sparse=True)
                             if owned(c.attrs.get("Labels"))),
        "networks": sorted(n.name for n in client.networks.list() if owned(n.attrs.get("Labels"))),
        "volumes": sorted(v.name for v in client.volumes.list() if owned(v.attrs.get("Labels"))),
    }


def _poll(probe: Probe, path: str, want: int, wait: float = 45.0) -> int | None:
    deadline = time.monotonic() + wait
    while (status := probe.call("GET", path).status) != want and time.monotonic() < deadline:
        time.sleep(1)
    return status


def test_service_urls_are_the_names_and_ports_submissions_expect():
    assert service_urls() == {Service.LLM: "http://litellm:4000", Service.QDRANT: "http://qdrant:6333",
                              Service.MLFLOW: "http://mlflow:5000", Service.TEI: "http://tei-embeddings:80"}


def test_serves_breaks_and_stops_like_the_local_stack(backend):
    before = engine_objects()
    with backend.open_stack("stack-test") as stack:
        project = stack.project
        api = stack.start_api()
        assert api.wait_until_serving(120), api.startup_failure_reason()
        with Probe(api.url) as probe:
            token, _ = probe.login()
            assert probe.generate(token).status == 200
            assert any(entry.path.endswith("chat/completions") for entry in stack.llm.journal())
            stack.llm.script([ScriptedReply(status=400)])
            assert probe.generate(token).status == 400

            assert _poll(probe, "/health/detailed", 200) == 200
            stack.inject_fault(Service.QDRANT, Fault.DOWN)
            running = docker_client().containers.list(
                filters={"label": [f"com.docker.compose.project={project}", "com.docker.compose.service=qdrant"]})
            assert running == [], "DOWN stops the dependency's container"
            assert _poll(probe, "/health/detailed", 503) == 503
            stack.clear_fault(Service.QDRANT)
            assert _poll(probe, "/health/detailed", 200) == 200

            stack.inject_fault(Service.LLM, Fault.SLOW, delay=2.0)
            slowed = probe.generate(token)
            stack.clear_fault(Service.LLM)
            assert slowed.status == 200 and slowed.elapsed_s >= 2.0

        api.send_signal(signal.SIGTERM)
        code = api.wait_exit(40)
        assert code in contract.CLEAN_EXIT_CODES, api.startup_failure_reason()
        assert any("drain" in line.text.lower() for line in api.output()), [line.text for line in api.output()][-20:]
        assert all(line.at >= api.started_at - 1 for line in api.output())

        refused = stack.start_api({contract.SECRET_VARIABLE: None})
        assert refused.wait_exit(60) not in (None, 0)
        assert any(contract.SECRET_VARIABLE in line.text for line in refused.output())
    after = engine_objects()
    assert not any(project in name for names in after.values() for name in names), after
    assert after == before


def test_a_fork_bomb_meets_the_process_limit_and_the_reason_names_it(tmp_path):
    """The engine enforces ``pids_limit``; the grader reads the kernel's count of refused forks
    while the container lives, so the reason still names the limit after the container is gone."""
    _skip_without_engine()
    limits = Limits(processes=64)
    with ComposeBackend(build_fixture("forks-without-bound"), tmp_path / "work", limits) as opened:
        with opened.open_stack("ex1") as stack:
            api = stack.start_api()
            assert not api.wait_until_serving(15)
            api.kill()
            assert "process limit hit (64 processes and threads)" in api.startup_failure_reason()


def test_a_submission_without_a_dockerfile_is_unrunnable_not_an_error(tmp_path):
    _skip_without_engine()
    checkout = tmp_path / "submission"
    (checkout / "src" / "api").mkdir(parents=True)
    reference_api = build_fixture("reference") / "src" / "api"
    for name in ("main.py", "requirements.txt"):
        (checkout / "src" / "api" / name).write_text((reference_api / name).read_text())
    with ComposeBackend(checkout, tmp_path / "work", Limits()) as opened:
        with pytest.raises(SubmissionUnrunnable, match="Dockerfile is missing"):
            opened.open_stack("ex1")


def test_sigterm_to_the_grader_takes_every_project_down_and_exits_130(tmp_path):
    _skip_without_engine()
    before = engine_objects()
    grade = Path(sys.executable).parent / "grade"
    proc = subprocess.Popen([str(grade), str(build_fixture("reference")), "--backend", "compose", "--only", "ex3",
                             "-o", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not any(name.endswith("-api-1") for name in engine_objects()["containers"]):
            assert proc.poll() is None and time.monotonic() < deadline, "no API container came up"
            time.sleep(0.5)
    finally:
        # Also when the test fails before: SIGTERM, never SIGKILL, so the grader cleans up.
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr
    assert engine_objects() == before


def test_more_networks_than_the_engines_default_pools_hold(tmp_path):
    """Sixteen projects of two networks each: past the ~31 networks of Docker's default pools."""
    _skip_without_engine()
    before = engine_objects()
    images = ensure_images(on_progress=lambda message: None)
    env = {"SUBMISSION_DIR": str(build_fixture("reference")), "GRADER_STANDINS_IMAGE": images.standins,
           "GRADER_MLFLOW_IMAGE": images.mlflow}
    projects = [ComposeProject(f"grade-{index:02d}-subnets-test", env, tmp_path) for index in range(16)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda project: project.up(["faults"], networks=["front", "deps"]), projects))
        subnets = [project.network(name).attrs["IPAM"]["Config"][0]["Subnet"]
                   for project in projects for name in ("front", "deps")]
        assert len(set(subnets)) == 32
        assert all(ipaddress.ip_network(subnet).subnet_of(ipaddress.ip_network("10.213.0.0/16")) for subnet in subnets)
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda project: project.down(), projects))
    assert engine_objects() == before


def test_a_down_racing_an_up_is_followed_by_one_that_leaves_nothing(tmp_path):
    """An interrupt downs a project from another thread while its owner's ``up`` may still be
    creating networks: the owner's own down after its ``up`` ends must still find the project."""
    _skip_without_engine()
    before = engine_objects()
    images = ensure_images(on_progress=lambda message: None)
    env = {"SUBMISSION_DIR": str(build_fixture("reference")), "GRADER_STANDINS_IMAGE": images.standins,
           "GRADER_MLFLOW_IMAGE": images.mlflow}
    project = ComposeProject("grade-race-down-test", env, tmp_path)
    with ThreadPoolExecutor(max_workers=1) as pool:
        up = pool.submit(project.up, ["faults"], networks=["front", "deps"])
        while not up.done() and not list(tmp_path.glob("*.subnets.yml")):
            time.sleep(0.05)
        try:
            project.down()  # the interrupt's, at once: before, during or after the up's networks
        except StackError:
            pass  # racing the up, it may fail (the backend's abort reports it and goes on)
        up.exception()  # the up may fail or succeed: either way it has ended
    project.down()  # the owner's
    assert engine_objects() == before


def test_a_dockerfile_that_does_not_build_is_the_students_failure(tmp_path):
    _skip_without_engine()
    checkout = tmp_path / "submission"
    api = checkout / "src" / "api"
    api.mkdir(parents=True)
    reference_api = build_fixture("reference") / "src" / "api"
    for name in ("main.py", "requirements.txt"):
        (api / name).write_text((reference_api / name).read_text())
    (api / "Dockerfile").write_text("FROM python:3.11-slim\nRUN echo 'the student broke the build' && exit 3\n")
    containers_before = len(docker_client().containers.list(all=True, sparse=True))
    with ComposeBackend(checkout, tmp_path / "work", Limits()) as opened:
        with pytest.raises(SubmissionUnrunnable, match="its image did not build"):
            opened.open_stack("ex1")
    assert len(docker_client().containers.list(all=True, sparse=True)) == containers_before, "a build container left"
