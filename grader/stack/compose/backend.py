"""The compose backend of one grading: the submission's image built once, a project per stack.

``ComposeBackend`` builds the API image as the student's own compose file builds it
(``build.py``; tagged for this grading alone and untagged when it ends), starts the grading's
one MLflow server in a project of its own (MLflow is the heaviest service: one per stack
would cost half a GiB and seconds of CPU each), then opens a ``ComposeStack`` per scenario
stack, exactly as ``LocalBackend`` opens local ones. A Dockerfile that does not build is the
student's fault; an index out of reach is the machine's.
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

import httpx
import yaml

from grader.errors import StackError
from grader.sandbox.limits import Limits
from grader.stack.base import Service, SubmissionUnrunnable
from grader.stack.compose.build import build_api_image
from grader.stack.compose.buildspec import build_spec
from grader.stack.compose.dockerfile import GRADER_NAMESPACE
from grader.stack.compose.engine import docker_client
from grader.stack.compose.images import ensure_images
from grader.stack.compose.project import UP_TIMEOUT_S, ComposeProject
from grader.stack.compose.stack import ComposeImages, ComposeStack, service_ports, without_healthchecks
from grader.stack.compose.workdir import WorkdirCopy, copy_workdir
from grader.stack.local import unrunnable_reason

# The submissions' images, one tag per grading.
API_REPOSITORY = f"{GRADER_NAMESPACE}api"
# How a protection is provided on this backend, for the report header.
ISOLATION_LINES = (
    "sandbox: container per process (own filesystem and PID namespace, no capabilities, no-new-privileges, "
    "read-only root with sized tmpfs; the grader's files not mounted)",
    "network: internal Docker networks only (no route out); the image built on a network that reaches only "
    "the package indexes, through a proxy",
)


class ComposeBackend:
    """One grading on the Docker engine; a context manager like ``LocalBackend``."""

    name = "compose"

    def __init__(self, checkout: Path, workdir: Path, limits: Limits,
                 on_stage: Callable[[str], None] = lambda message: None) -> None:
        self.checkout = checkout
        self.workdir = workdir
        self.limits = limits
        self._on_stage = on_stage
        self._problem: str | None = None
        self._copy = WorkdirCopy(None)
        self._exit: ExitStack | None = None
        self._stacks: set[ComposeStack] = set()
        self._aborted = False
        self._lock = threading.Lock()

    def __enter__(self) -> "ComposeBackend":
        self.workdir.mkdir(parents=True, exist_ok=True)
        built = ensure_images(on_progress=self._on_stage)
        # A tag of this grading's own: removed when it ends, whoever else builds the same tree.
        self.images = ComposeImages(api=f"{API_REPOSITORY}:{secrets.token_hex(8)}", standins=built.standins,
                                    mlflow=built.mlflow)
        with ExitStack() as starting:
            starting.callback(self._remove_api_image)
            self._problem = unrunnable_reason(self.checkout) or self._build()
            if self._problem is None:
                self._mlflow = self._start_mlflow(starting)
            self._exit = starting.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Every stack downs its own project.
        if self._exit is not None:
            self._exit.close()

    def _start_mlflow(self, owned: ExitStack):
        """The grading's MLflow server, serving; its project is downed by ``owned``."""
        name = f"grade-{secrets.token_hex(4)}-mlflow"
        override = self.workdir / f"{name}.override.yml"
        override.write_text(yaml.safe_dump(without_healthchecks()))
        owned.callback(override.unlink, missing_ok=True)
        mlflow = ComposeProject(name, {"SUBMISSION_DIR": str(self.checkout), **self.images.variables()},
                                self.workdir, overrides=[override])
        owned.callback(mlflow.down)
        mlflow.up(["mlflow"], networks=["deps"])
        port = service_ports()[Service.MLFLOW]
        address = mlflow.wait_listening("mlflow", "deps", port)
        _wait_serving(f"http://{address}:{port}/health", UP_TIMEOUT_S)
        return mlflow.containers("mlflow")[0]

    def open_stack(self, name: str) -> ComposeStack:
        """A fresh project for one scenario; SubmissionUnrunnable when the submission cannot run."""
        if self._problem is not None:
            raise SubmissionUnrunnable(self._problem)
        stack = ComposeStack(name, self.checkout, self.images, self._mlflow, self.workdir, self.limits, self._copy)
        with self._lock:
            if self._aborted:  # a scenario's retry must not bring a project up after the interrupt
                raise StackError(f"the grading was interrupted: no stack {name} opened")
            self._stacks.add(stack)
        return stack

    def abort(self) -> None:
        """Take every project of this grading down now (an interrupt): the scenarios still
        running find their stacks gone and end, and nothing is left on the engine."""
        with self._lock:
            self._aborted = True
            stacks = [stack for stack in self._stacks if not stack.closed]
        with ThreadPoolExecutor(max_workers=max(1, len(stacks))) as pool:
            for failed in [f for f in [pool.submit(stack.abort) for stack in stacks] if f.exception()]:
                self._on_stage(f"could not take a stack down: {failed.exception()}")
        if self._exit is not None:
            self._exit.close()

    def _build(self) -> str | None:
        """Build the submission's image as the student builds it and copy its working
        directory; why it cannot run, or None."""
        try:
            spec = build_spec(self.checkout)
            build_api_image(self.checkout, spec, self.images.api, self.workdir, self.limits, self.images.standins,
                            self._on_stage)
            self._copy = copy_workdir(self.images.api, self.workdir / "api-workdir.tar", self.limits.disk_bytes)
        except SubmissionUnrunnable as exc:
            return str(exc)
        return None

    def _remove_api_image(self) -> None:
        """Untag the submission's image; its layers stay as the engine's build cache (removing
        them could pull a layer from under another grading's build that shares it)."""
        import docker.errors

        try:
            # force: untagged even while a container (an interrupted stack's) still uses it.
            docker_client().images.remove(self.images.api, force=True, noprune=True)
        except docker.errors.ImageNotFound:
            pass  # never built (or already removed by an interrupt's abort)


def _wait_serving(url: str, timeout: float) -> None:
    """Return once ``url`` answers 200: MLflow listens before its worker serves."""
    deadline = time.monotonic() + timeout
    # The Host MLflow's DNS-rebinding guard accepts (the compose file's --allowed-hosts).
    with httpx.Client(trust_env=False, timeout=5.0, headers={"Host": "localhost:5000"}) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    raise StackError(f"MLflow did not answer {url} within {timeout:.0f} s")

