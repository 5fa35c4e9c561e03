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

import docker.errors
import pytest

from fixtures.build import build_fixture
from grader import contract
from grader.errors import StackError
from grader.sandbox.limits import Limits
from grader.scenarios.http import Probe
from grader.stack.base import Fault, ScriptedReply, Service, SubmissionUnrunnable
from grader.stack.compose.backend import ComposeBackend
from grader.stack.compose.engine import docker_client
from grader.stack.compose.images import ensure_images
from grader.stack.compose.project import ComposeProject
from grader.stack.compose.stack import service_urls

from .support import ProjectNames, engine_objects, require_compose

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    require_compose()
    with ComposeBackend(build_fixture("reference"), tmp_path_factory.mktemp("compose"), Limits()) as opened:
        yield opened
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client().images.get(opened.images.api)  # the grading's tag goes with it


def _poll(probe: Probe, path: str, want: int, wait: float = 45.0) -> int | None:
    deadline = time.monotonic() + wait
    while (status := probe.call("GET", path).status) != want and time.monotonic() < deadline:
        time.sleep(1)
    return status


def test_service_urls_are_the_names_and_ports_submissions_expect():
    assert service_urls() == {Service.LLM: "http://litellm:4000", Service.QDRANT: "http://qdrant:6333",
                              Service.MLFLOW: "http://mlflow:5000", Service.TEI: "http://tei-embeddings:80"}


def test_serves_breaks_and_stops_like_the_local_stack(backend, projects: ProjectNames):
    with backend.open_stack("stack-test") as stack:
        project = stack.project
        api = stack.start_api()
        assert api.wait_until_serving(120), api.startup_failure_reason()
        host = docker_client().containers.get(api.name).attrs["HostConfig"]
        limits = backend.limits
        assert (host["CapDrop"], host["SecurityOpt"], host["ReadonlyRootfs"]) == (
            ["ALL"], ["no-new-privileges:true"], True)
        assert (host["Memory"], host["PidsLimit"], host["NanoCpus"]) == (
            limits.memory_bytes, limits.processes, int(limits.cpus * 1e9))
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
    assert project in projects.names
    assert projects.left_behind() == {"containers": [], "networks": [], "volumes": []}


def test_the_api_writes_only_to_its_sized_folders_and_the_graders_scan_finds_what_it_wrote(backend):
    """What the API writes is found by the grader's own program in the scanner container, also
    once the API is gone: the student's Python takes no part in the answer."""
    with backend.open_stack("written-test") as stack:
        api = stack.start_api()
        assert api.wait_until_serving(120), api.startup_failure_reason()
        container = docker_client().containers.get(api.name)
        workdir = container.attrs["Config"]["WorkingDir"]
        since = time.time()
        marker = "trace-marker-5c1e"

        def inside(command: str) -> tuple[int, str]:
            done = container.exec_run(["sh", "-c", command])
            return done.exit_code, done.output.decode(errors="replace")

        assert inside(f"echo {marker} > {workdir}/traces_fallback.jsonl && echo {marker} > /tmp/kept.json "
                      f"&& echo {marker} > $HOME/in-home.txt && echo nothing > /tmp/other.txt")[0] == 0
        assert inside(f"ln -s {workdir}/traces_fallback.jsonl /tmp/link.json && mkfifo /tmp/fifo")[0] == 0
        code, output = inside("touch /etc/written-by-the-api")
        assert code != 0 and "Read-only file system" in output
        code, output = inside("df -B1 /tmp | tail -1")
        assert code == 0 and int(output.split()[1]) == backend.limits.disk_bytes

        expected = sorted([f"{workdir}/traces_fallback.jsonl", "/tmp/kept.json", "/home/api/in-home.txt"])
        assert stack.files_written_since(since, [marker]) == expected
        api.kill()
        assert stack.files_written_since(since, [marker]) == expected
        assert stack.files_written_since(time.time() + 60, [marker]) == []


def test_a_fork_bomb_meets_the_process_limit_and_the_reason_names_it(tmp_path):
    """The engine enforces ``pids_limit``; the grader reads the kernel's count of refused forks
    while the container lives, so the reason still names the limit after the container is gone."""
    require_compose()
    limits = Limits(processes=64)
    with ComposeBackend(build_fixture("forks-without-bound"), tmp_path / "work", limits) as opened:
        with opened.open_stack("ex1") as stack:
            api = stack.start_api()
            assert not api.wait_until_serving(15)
            api.kill()
            assert "process limit hit (64 processes and threads)" in api.startup_failure_reason()


def test_a_full_disk_ends_the_api_and_the_reason_names_the_limit(tmp_path):
    """The writable folders are tmpfs volumes of the disk limit: an 8 GiB write meets ENOSPC,
    the import fails, and the grader's scanner tells the folder was full."""
    require_compose()
    limits = Limits(disk_bytes=64 * 2**20)
    with ComposeBackend(build_fixture("writes-gigabytes"), tmp_path / "work", limits) as opened:
        with opened.open_stack("ex1") as stack:
            api = stack.start_api()
            assert not api.wait_until_serving(120)
            assert api.fatal_limit() == "disk limit hit (64 MiB: /tmp full)"
            assert api.startup_failure_reason().startswith("disk limit hit (64 MiB: /tmp full)")


def test_a_submission_without_a_dockerfile_is_unrunnable_not_an_error(tmp_path):
    require_compose()
    checkout = tmp_path / "submission"
    (checkout / "src" / "api").mkdir(parents=True)
    reference_api = build_fixture("reference") / "src" / "api"
    for name in ("main.py", "requirements.txt"):
        (checkout / "src" / "api" / name).write_text((reference_api / name).read_text())
    with ComposeBackend(checkout, tmp_path / "work", Limits()) as opened:
        with pytest.raises(SubmissionUnrunnable, match="Dockerfile is missing"):
            opened.open_stack("ex1")


def test_sigterm_to_the_grader_takes_every_project_down_and_exits_130(tmp_path):
    require_compose()
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
    require_compose()
    before = engine_objects()
    images = ensure_images(on_progress=lambda message: None)
    env = {"SUBMISSION_DIR": str(build_fixture("reference")), "GRADER_STANDINS_IMAGE": images.standins,
           "GRADER_MLFLOW_IMAGE": images.mlflow}
    projects = [ComposeProject(f"grade-{index:02d}-subnets-test", env, tmp_path) for index in range(16)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda project: project.up(["faults"], networks=["front", "deps"]), projects))
        networks = [project.network(name).attrs for project in projects for name in ("front", "deps")]
        # The subnets file repeats each network's definition: both stay internal (no route out).
        assert all(network["Internal"] for network in networks)
        subnets = [network["IPAM"]["Config"][0]["Subnet"] for network in networks]
        assert len(set(subnets)) == 32
        assert all(ipaddress.ip_network(subnet).subnet_of(ipaddress.ip_network("10.213.0.0/16")) for subnet in subnets)
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda project: project.down(), projects))
    assert engine_objects() == before


def test_a_down_racing_an_up_is_followed_by_one_that_leaves_nothing(tmp_path):
    """An interrupt downs a project from another thread while its owner's ``up`` may still be
    creating networks: the owner's own down after its ``up`` ends must still find the project."""
    require_compose()
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
    require_compose()
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
