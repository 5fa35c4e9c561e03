"""Building a submission's API image as the student builds it, on a network of its own.

The context and Dockerfile come from the student's compose file (``buildspec``); what the
Dockerfile names is checked first (``dockerfile``); the context is packed on the grader's
side (``context``). The build runs on the engine's classic builder, its steps on the
``build`` network of ``build.yml``, where the only peer is a proxy to the package indexes.
Its steps get the grader's memory limit, the whole build the install's time limit; its output
is read as it comes and only the last lines of the current step are kept.

A build that fails is the student's failure, and its reason quotes the failing step and its
last lines; a build that failed while the proxy could not reach an index is the machine's.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Callable

import docker.errors
import requests

from grader.errors import MachineError
from grader.sandbox.limits import Limits
from grader.stack.base import SubmissionUnrunnable
from grader.stack.compose.buildspec import BuildSpec
from grader.stack.compose.context import pack_context
from grader.stack.compose.dockerfile import reference_problem
from grader.stack.compose.engine import docker_client, one_line
from grader.stack.compose.project import ComposeProject

BUILD_FILE = Path(__file__).with_name("build.yml")
PROXY_PORT = 3128
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
_TAIL_LINES = 6
_LINE_CHARS = 240
_STEP_CHARS = 120
_DESTINATION_CHARS = 100
_PROXY_LOG_LINES = 200
# How long an interrupted build may take to end before its network is taken down anyway.
_DRAIN_S = 30.0
_STEP = re.compile(r"^Step (?P<number>\d+/\d+) : (?P<instruction>.*)$")
# The builder's own lines, which say nothing about why a step failed.
_BUILDER_LINE = re.compile(r"^( ---> |Removing intermediate container |Successfully (built|tagged) |\[Warning\] )")
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def build_api_image(checkout: Path, spec: BuildSpec, tag: str, workdir: Path, limits: Limits, standins_image: str,
                    on_stage: Callable[[str], object] = lambda message: None) -> None:
    """Build ``spec`` as ``tag``. SubmissionUnrunnable (one line) when it may not or does not
    build, MachineError when an index did not answer while it failed."""
    if problem := reference_problem(spec.dockerfile_text, spec.args):
        raise SubmissionUnrunnable(problem)
    with tempfile.TemporaryFile(dir=workdir) as archive:
        dockerfile = pack_context(checkout, spec, archive, limits.disk_bytes)
        archive.seek(0)
        grading = f"grade-{secrets.token_hex(4)}-build"
        project = ComposeProject(grading, {"GRADER_STANDINS_IMAGE": standins_image}, workdir, files=[BUILD_FILE])
        try:
            project.up(["index-proxy"], networks=["build", "egress"])
            # The host has no address on `build`: it checks the proxy through `egress`.
            project.wait_listening("index-proxy", "egress", PROXY_PORT)
            proxy = f"http://{project.address('index-proxy', 'build')}:{PROXY_PORT}"
            on_stage(f"building the submission's image: {spec.describe()}")
            failure = _run(archive, dockerfile, spec, tag, project, proxy, limits)
            if failure is not None:
                raise _failed(failure, _proxy_events(project))
        finally:
            project.down()


def _failed(failure: str, events: list[dict]) -> Exception:
    """A failed build as the student's failure, or the machine's when an index did not answer."""
    def destination(event: dict) -> str:
        return f"{event.get('host')}:{event.get('port')}"[:_DESTINATION_CHARS]  # the build chose the name

    unreachable = [event for event in events if event.get("event") == "unreachable"]
    if unreachable:
        return MachineError(f"package index unreachable while building the submission's image: "
                            f"{destination(unreachable[0])} ({unreachable[0].get('error')})")
    refused = sorted({destination(event) for event in events if event.get("event") == "refused"})
    if refused:
        failure += f"; it asked for {', '.join(refused[:3])}, which is not a package index the grader reaches"
    return SubmissionUnrunnable(f"its image did not build: {failure}")


def _run(archive, dockerfile: str, spec: BuildSpec, tag: str, project: ComposeProject, proxy: str,
         limits: Limits) -> str | None:
    """Run the build; None when it succeeded, else why it failed (one line)."""
    progress = _Progress()
    stopper = _Stopper(project, limits.install_s)
    chunks: Iterator[dict] = iter(())
    try:
        chunks = docker_client().api.build(
            fileobj=archive, custom_context=True, dockerfile=dockerfile, tag=tag, target=spec.target,
            buildargs={**spec.args, **{name: proxy for name in _PROXY_VARIABLES}}, network_mode=stopper.network,
            container_limits={"memory": limits.memory_bytes, "memswap": limits.memory_bytes},
            rm=True, forcerm=True, decode=True,
            timeout=limits.install_s + 60)
        failure = progress.follow(chunks)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        if not stopper.fired:
            raise MachineError(f"the engine failed while building the submission's image: {one_line(exc)}") from exc
        failure = ""
    except BaseException:
        # Interrupted: the engine would build on without its client, on a network about to go.
        stopper.fire()
        _drain(chunks, _DRAIN_S)
        raise
    finally:
        stopper.stop()
    if stopper.fired:
        return f"it took more than {limits.install_s:.0f} s ({progress.where()})"
    return failure


class _Progress:
    """What the build is doing: its current step and that step's last lines."""

    def __init__(self) -> None:
        self.step = ""
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)

    def follow(self, chunks: Iterable[dict]) -> str | None:
        """Read the build's output to its end; None when it succeeded, else the failure."""
        for chunk in chunks:
            for line in _CONTROL.sub("", str(chunk.get("stream", ""))).splitlines():
                self._note(line.rstrip())
            if "error" in chunk:
                return self._failure(chunk)
        return None

    def _note(self, line: str) -> None:
        if step := _STEP.match(line):
            instruction = step["instruction"]
            if len(instruction) > _STEP_CHARS:
                instruction = instruction[:_STEP_CHARS] + "..."
            self.step = f"step {step['number']} `{instruction}`"
            self._tail.clear()
        elif line.strip() and not _BUILDER_LINE.match(line):
            self._tail.append(line.strip()[:_LINE_CHARS])

    def _failure(self, chunk: dict) -> str:
        error = one_line(_CONTROL.sub("", str(chunk["error"])))[:_LINE_CHARS * 2]
        code = (chunk.get("errorDetail") or {}).get("code")
        where = self.step or "before its first step"
        if code is None:
            return f"{where}: {error}"
        last = " | ".join(self._tail) or "no output"
        return f"{where} exited with {code}: {last}"

    def where(self) -> str:
        return f"at {self.step}" if self.step else "before its first step"


class _Stopper:
    """Ends the build past its time limit or on an interrupt, by killing every step container
    on its network until it has ended: the classic builder fails a step whose container is
    killed (and runs on when its client merely goes away)."""

    def __init__(self, project: ComposeProject, limit_s: float) -> None:
        self.network = f"{project.name}_build"
        self._proxy = {container.id for container in project.containers("index-proxy")}
        self._deadline = time.monotonic() + limit_s
        self._now = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name=f"{project.name}-stopper")
        self._thread.start()
        self.fired = False

    def fire(self) -> None:
        self._now.set()

    def stop(self) -> None:
        self._done.set()
        self._now.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        self._now.wait(max(0.0, self._deadline - time.monotonic()))
        if self._done.is_set():
            return
        self.fired = True
        while not self._done.is_set():
            self._kill_steps()
            self._done.wait(0.5)

    def _kill_steps(self) -> None:
        client = docker_client()
        try:
            network = client.networks.get(self.network)
            for container_id in set(network.attrs.get("Containers") or {}) - self._proxy:
                client.containers.get(container_id).kill()
        except (docker.errors.DockerException, requests.RequestException):
            pass  # a step ending meanwhile: the next round sees what is left


def _drain(chunks: Iterator[dict], limit_s: float) -> None:
    """Read what is left of a stopped build's output, for at most ``limit_s``."""

    def read_to_end() -> None:
        try:
            deque(chunks, maxlen=0)
        except (docker.errors.DockerException, requests.RequestException):
            pass  # the stream broke: the build has ended either way

    reader = threading.Thread(target=read_to_end, daemon=True, name="build-drain")
    reader.start()
    reader.join(timeout=limit_s)


def _proxy_events(project: ComposeProject) -> list[dict]:
    """The proxy's last reports (index_proxy.report), bounded."""
    events = []
    for container in project.containers("index-proxy"):
        for line in container.logs(stdout=True, stderr=False, tail=_PROXY_LOG_LINES).decode(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                events.append(event)
    return events
