"""A submission's image built on the real engine as the student builds it: each layout of the
handout and after, the failing step quoted, the time limit, an interrupt, and a network that
reaches the package index but not the machine. Small repositories of the tests' own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from grader.sandbox.limits import Limits
from grader.stack.base import SubmissionUnrunnable
from grader.stack.compose.build import build_api_image
from grader.stack.compose.buildspec import build_spec
from grader.stack.compose.engine import docker_client
from grader.stack.compose.images import OfflineImages, ensure_images

from .support import ProjectNames, require_compose

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

HANDOUT_COMPOSE = ("services:\n  api:\n    build:\n      context: .\n      dockerfile: ./src/api/Dockerfile\n"
                   "    volumes: [\".:/app\"]\n    working_dir: /app/src/api\n")
HANDOUT_DOCKERFILE = ("FROM python:3.11-slim\nWORKDIR /app\nCOPY src/api/requirements.txt .\n"
                      "COPY test-requirements.txt .\n"
                      "RUN pip install --no-cache-dir -r requirements.txt -r test-requirements.txt\n"
                      "COPY src/api/ .\nCOPY tests/ ./tests/\n"
                      'CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]\n')
API_DOCKERFILE = ("FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\n"
                  "RUN pip install --no-cache-dir -r requirements.txt\nCOPY . .\n")
TAG = "llmops-grader/api:build-test"


@pytest.fixture(scope="module")
def images() -> OfflineImages:
    require_compose()
    return ensure_images(on_progress=lambda message: None)


@pytest.fixture()
def tagged() -> Iterator[str]:
    """The tag a test builds, removed after it."""
    yield TAG
    import docker.errors

    try:
        docker_client().images.remove(TAG, force=True, noprune=True)
    except docker.errors.ImageNotFound:
        pass


def _repo(root: Path, dockerfile: str, compose: str | None) -> Path:
    (root / "src" / "api").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "src" / "api" / "main.py").write_text("import six\napp = None\n")
    (root / "src" / "api" / "requirements.txt").write_text("six==1.16.0\n")
    (root / "src" / "api" / "Dockerfile").write_text(dockerfile)
    (root / "test-requirements.txt").write_text("iniconfig==2.0.0\n")
    (root / "tests" / "test_api.py").write_text("def test_nothing():\n    pass\n")
    if compose is not None:
        (root / "docker-compose.yml").write_text(compose)
    return root


def _build(checkout: Path, images: OfflineImages, tmp_path: Path, limits: Limits = Limits()) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    build_api_image(checkout, build_spec(checkout), TAG, workdir, limits, images.standins)


def _in_image(command: str) -> str:
    """What ``command`` prints in a container of the built image. Its logs are read until they
    hold the end mark: on a loaded engine they may lag behind the container's exit."""
    container = docker_client().containers.run(TAG, ["sh", "-c", f"{command}; echo END-OF-OUTPUT"], detach=True,
                                               network_disabled=True)
    try:
        container.wait(timeout=120)
        deadline = time.monotonic() + 30
        while "END-OF-OUTPUT" not in (output := container.logs().decode()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return output.replace("END-OF-OUTPUT", "")
    finally:
        container.remove(force=True)


LAYOUTS = {
    # `COPY src/api/ .` copies src/api/Dockerfile too.
    "handout": (HANDOUT_DOCKERFILE, HANDOUT_COMPOSE, "Dockerfile main.py requirements.txt test-requirements.txt tests"),
    "src-api-context": (API_DOCKERFILE, "services:\n  api:\n    build: ./src/api\n",
                        "Dockerfile main.py requirements.txt"),
    "handout-without-compose": (HANDOUT_DOCKERFILE, None,
                                "Dockerfile main.py requirements.txt test-requirements.txt tests"),
    "src-api-without-compose": (API_DOCKERFILE, None, "Dockerfile main.py requirements.txt"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_builds_what_the_student_builds(layout, images, tagged, tmp_path, projects: ProjectNames):
    dockerfile, compose, listing = LAYOUTS[layout]
    _build(_repo(tmp_path / "repo", dockerfile, compose), images, tmp_path)
    assert _in_image("cd /app && ls | sort | tr '\\n' ' '").split() == sorted(listing.split())
    installed = _in_image("python -c 'import six; print(six.__version__)'; "
                          "python -c 'import iniconfig' 2>/dev/null && echo iniconfig || echo no-iniconfig")
    assert installed.split() == ["1.16.0", "iniconfig" if "test-requirements" in listing else "no-iniconfig"]
    # The proxy reached the index for the build; none of it stays in the image's environment.
    assert "proxy" not in _in_image("env").lower()
    assert projects.names and projects.left_behind() == {"containers": [], "networks": [], "volumes": []}


def test_a_failing_step_is_quoted_with_its_last_lines(images, tagged, tmp_path, projects: ProjectNames):
    dockerfile = ("FROM python:3.11-slim\nWORKDIR /app\n"
                  "RUN for i in $(seq 1 100); do echo \"line $i\"; done && echo 'the student broke it' && exit 3\n")
    with pytest.raises(SubmissionUnrunnable) as failure:
        _build(_repo(tmp_path / "repo", dockerfile, None), images, tmp_path)
    assert str(failure.value) == (
        "its image did not build: step 3/3 `RUN for i in $(seq 1 100); do echo \"line $i\"; done && echo 'the student "
        "broke it' && exit 3` exited with 3: line 96 | line 97 | line 98 | line 99 | line 100 | the student broke it")
    assert projects.left_behind() == {"containers": [], "networks": [], "volumes": []}


def test_a_copy_of_a_missing_file_names_the_step_and_the_file(images, tagged, tmp_path):
    repo = _repo(tmp_path / "repo", HANDOUT_DOCKERFILE, HANDOUT_COMPOSE)
    (repo / "test-requirements.txt").unlink()
    with pytest.raises(SubmissionUnrunnable) as failure:
        _build(repo, images, tmp_path)
    message = str(failure.value)
    assert message.startswith("its image did not build: step 4/8 `COPY test-requirements.txt .`: COPY failed: ")
    assert "test-requirements.txt" in message.removeprefix("its image did not build: step 4/8 `COPY") \
        and "\n" not in message


def test_a_step_asking_for_another_index_is_the_students_failure_and_says_so(images, tagged, tmp_path):
    dockerfile = ("FROM python:3.11-slim\n"
                  "RUN pip install --no-cache-dir --retries 0 --timeout 5 --index-url https://example.com/simple six\n")
    with pytest.raises(SubmissionUnrunnable) as failure:
        _build(_repo(tmp_path / "repo", dockerfile, None), images, tmp_path)
    assert str(failure.value).startswith("its image did not build: step 2/2 `RUN pip install")
    assert str(failure.value).endswith("; it asked for example.com:443, which is not a package index the grader "
                                       "reaches")


def test_the_graders_images_are_refused_before_anything_is_built(images, tmp_path, projects: ProjectNames):
    standins = docker_client().images.get(images.standins)
    for base in (images.standins, standins.short_id.removeprefix("sha256:")[:6]):
        with pytest.raises(SubmissionUnrunnable, match=r"^its Dockerfile names (one of the grader's own images|an image "
                                                       r"by ID)"):
            _build(_repo(tmp_path / base.replace("/", "-").replace(":", "-"), f"FROM {base}\nRUN ls /opt\n", None),
                   images, tmp_path)
    assert projects.names == set(), "no build started"


def test_a_build_past_its_time_limit_is_stopped(images, tagged, tmp_path, projects: ProjectNames):
    started = time.monotonic()
    with pytest.raises(SubmissionUnrunnable) as failure:
        _build(_repo(tmp_path / "repo", "FROM python:3.11-slim\nRUN sleep 600\n", None), images, tmp_path,
               Limits(install_s=20))
    assert str(failure.value) == "its image did not build: it took more than 20 s (at step 2/2 `RUN sleep 600`)"
    assert time.monotonic() - started < 300
    assert projects.left_behind() == {"containers": [], "networks": [], "volumes": []}
    assert not [c for c in docker_client().containers.list() if c.attrs["Config"].get("Cmd") == ["/bin/sh", "-c",
                                                                                                 "sleep 600"]]


def test_an_interrupted_build_is_stopped_and_leaves_nothing(images, tagged, tmp_path, projects: ProjectNames):
    repo = _repo(tmp_path / "repo", "FROM python:3.11-slim\nRUN sleep 601\n", None)

    def interrupt_once_the_step_runs() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            # An error of the engine's API (a container gone between the listing and its
            # inspection, a slow answer) must not end this watcher, or the build runs on to its
            # time limit: it looks again.
            try:
                running = [c.attrs["Config"].get("Cmd") for c in docker_client().containers.list(ignore_removed=True)]
            except (docker.errors.DockerException, requests.RequestException):
                running = []
            if ["/bin/sh", "-c", "sleep 601"] in running:
                # A real signal, as SIGTERM is to the grader (cli.py makes it a KeyboardInterrupt):
                # it breaks the wait on the engine's silent stream, where interrupt_main would not.
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.5)

    threading.Thread(target=interrupt_once_the_step_runs, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        _build(repo, images, tmp_path)
    assert projects.left_behind() == {"containers": [], "networks": [], "volumes": []}
    assert not [c for c in docker_client().containers.list(ignore_removed=True)
                if c.attrs["Config"].get("Cmd") == ["/bin/sh", "-c", "sleep 601"]]


# Tries every way to the machine it can find: the machine's addresses and the bridge's gateway,
# directly and through the build's proxy. Prints each attempt; exits 1 if one got through.
PROBE = r'''
import json, os, socket, sys
ports = [int(port) for port in sys.argv[1].split(",")]
addresses = set(sys.argv[2].split(",")) | {"127.0.0.1"}
with open("/proc/net/route") as routes:
    for fields in (line.split() for line in list(routes)[1:]):
        if fields[1] == "00000000":
            addresses.add(socket.inet_ntoa(bytes.fromhex(fields[2])[::-1]))
proxy = os.environ["HTTP_PROXY"].removeprefix("http://").rstrip("/")
proxy_host, proxy_port = proxy.rsplit(":", 1)
reached = []
def attempt(how, host, port, request=None):
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            if request is None:
                reached.append(f"{how} {host}:{port}")
                return
            conn.sendall(request)
            answer = conn.recv(200)
            if answer.startswith(b"HTTP/1.1 200") or b"hello" in answer:
                reached.append(f"{how} {host}:{port}: {answer[:40]!r}")
    except OSError:
        pass
for address in sorted(addresses):
    for port in ports:
        attempt("direct", address, port)
        attempt("connect", proxy_host, int(proxy_port), f"CONNECT {address}:{port} HTTP/1.1\r\n\r\n".encode())
        attempt("get", proxy_host, int(proxy_port), f"GET http://{address}:{port}/ HTTP/1.1\r\n\r\n".encode())
print(json.dumps({"tried": sorted(addresses), "reached": reached}))
sys.exit(1 if reached else 0)
'''


class _Listener:
    """A port the grader opened on the machine, counting who connects."""

    def __init__(self, host: str) -> None:
        self.accepted = 0
        self._server = socket.create_server((host, 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.sendall(b"hello from the grader's machine\n")

    def close(self) -> None:
        self._server.close()


def _machine_addresses() -> list[str]:
    listing = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    return sorted({line.split()[3].split("/")[0] for line in listing.splitlines()})


def test_the_build_reaches_the_index_but_not_a_port_the_grader_opened_on_the_machine(
        images, tagged, tmp_path, projects: ProjectNames):
    loopback, everywhere = _Listener("127.0.0.1"), _Listener("0.0.0.0")
    try:
        ports = f"{loopback.port},{everywhere.port}"
        addresses = ",".join(_machine_addresses())
        repo = _repo(tmp_path / "repo", "FROM python:3.11-slim\nCOPY probe.py /probe.py\n"
                                        "RUN pip install --no-cache-dir six==1.16.0\n"
                                        f"RUN python /probe.py {ports} {addresses}\n", None)
        (repo / "probe.py").write_text(PROBE)
        # The probe itself finds a way when there is one: run on the machine, it reaches both.
        control = subprocess.run([sys.executable, str(repo / "probe.py"), ports, addresses], capture_output=True,
                                 text=True, env={"HTTP_PROXY": "http://127.0.0.1:1"}, timeout=120)
        assert control.returncode == 1 and f"direct 127.0.0.1:{loopback.port}" in control.stdout
        before = loopback.accepted + everywhere.accepted

        _build(repo, images, tmp_path)  # fails, quoting the probe, if a step got through

        assert loopback.accepted + everywhere.accepted == before
        assert "1.16.0" in _in_image("python -c 'import six; print(six.__version__)'")
    finally:
        loopback.close()
        everywhere.close()
    assert projects.left_behind() == {"containers": [], "networks": [], "volumes": []}

