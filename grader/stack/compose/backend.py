"""The compose backend of one grading: the submission's image built once, a project per stack.

``ComposeBackend`` builds the API image from the submission's own ``src/api/Dockerfile``
(tagged by a hash of ``src/api``, so an unchanged submission is not built twice), starts the
grading's one MLflow server in a project of its own (MLflow is the heaviest service: one per
stack would cost half a GiB and seconds of CPU each), then opens a ``ComposeStack`` per
scenario stack, exactly as ``LocalBackend`` opens local ones. A Dockerfile that does not
build is the student's fault; an index out of reach is the machine's.
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Mapping, Sequence

import httpx
import yaml

from grader.cache import tree_hash
from grader.errors import MachineError, StackError
from grader.models import CheckResult
from grader.sandbox.limits import Limits
from grader.scenarios.deadline import GradingClock
from grader.stack.base import Service, SubmissionUnrunnable
from grader.stack.compose.engine import docker_client, run_compose
from grader.stack.compose.images import ensure_images
from grader.stack.compose.project import UP_TIMEOUT_S, ComposeProject
from grader.stack.compose.stack import ComposeImages, ComposeStack, grading_override, service_ports
from grader.stack.local import unrunnable_reason

# How a protection is provided on this backend, for the report header.
ISOLATION_LINES = (
    "sandbox: container per process (own filesystem and PID namespace, the grader's files not mounted)",
    "network: internal Docker networks only (no route out)",
)
# pip's words for "the index was never reached" (a build that fails for them is not the student's).
_UNREACHABLE_MARKERS = (
    "failed to establish a new connection",
    "temporary failure in name resolution",
    "network is unreachable",
    "connecttimeouterror",
    "read timed out",
    "connection refused",
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
        self._exit: ExitStack | None = None
        self._stacks: set[ComposeStack] = set()
        self._aborted = False
        self._lock = threading.Lock()

    def __enter__(self) -> "ComposeBackend":
        self.workdir.mkdir(parents=True, exist_ok=True)
        built = ensure_images(on_progress=self._on_stage)
        self._problem = unrunnable_reason(self.checkout)
        dockerfile = self.checkout / "src" / "api" / "Dockerfile"
        if self._problem is None and (not dockerfile.is_file() or dockerfile.is_symlink()):
            self._problem = "src/api/Dockerfile is missing"
        api_image = f"llmops-grader/api:{tree_hash(self.checkout / 'src' / 'api')}"
        if self._problem is None:
            self._problem = self._build(api_image)
        self.images = ComposeImages(api=api_image, standins=built.standins, mlflow=built.mlflow)
        if self._problem is None:
            with ExitStack() as starting:
                self._mlflow = self._start_mlflow(starting)
                self._exit = starting.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Every stack downs its own project; the API image stays as the build cache.
        if self._exit is not None:
            self._exit.close()

    def _start_mlflow(self, owned: ExitStack):
        """The grading's MLflow server, serving; its project is downed by ``owned``."""
        name = f"grade-{secrets.token_hex(4)}-mlflow"
        override = self.workdir / f"{name}.override.yml"
        override.write_text(yaml.safe_dump(grading_override(self.limits)))
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
        stack = ComposeStack(name, self.checkout, self.images, self._mlflow, self.workdir, self.limits)
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

    def _build(self, tag: str) -> str | None:
        """Build the submission's image unless built before; why it did not build, or None."""
        import docker.errors

        try:
            docker_client().images.get(tag)
            return None
        except docker.errors.ImageNotFound:
            pass
        self._on_stage("building the submission's image from its src/api/Dockerfile")
        env_file = self.workdir / "build.env"
        env_file.write_text("")
        project = f"grade-{secrets.token_hex(4)}-build"
        # --force-rm: a failed step's container would otherwise stay behind, once per broken submission.
        result = run_compose(project, ["build", "--force-rm", "api"],
                             {"SUBMISSION_DIR": str(self.checkout), "API_IMAGE": tag},
                             timeout=self.limits.install_s, env_file=env_file)
        log = result.stdout + result.stderr
        if result.returncode == 0:
            return None
        if any(marker in log.lower() for marker in _UNREACHABLE_MARKERS):
            raise MachineError(f"package index unreachable while building the submission's image: {_last_line(log)}")
        return f"its image did not build: {_last_line(log)}"


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


def _last_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1][:300]


def grade_in_containers(checkout: Path, workdir: Path, exercises: Sequence[str],
                        settings: Mapping[str, Mapping[str, float]], limits: Limits, clock: GradingClock,
                        on_finished: Callable[[str, list[CheckResult]], None] = lambda exercise, checks: None,
                        on_stage: Callable[[str], None] = lambda message: None) -> dict[str, CheckResult]:
    """The scenarios of ``exercises`` on the Docker engine: what ``pipeline.grade`` calls for compose."""
    from grader.scenarios.runner import run_on_backend  # the scenarios pull in the whole grader

    with ComposeBackend(checkout, workdir, limits, on_stage) as backend:
        on_stage("running the scenarios, one compose project per stack")
        return run_on_backend(backend.open_stack, checkout, exercises, settings, clock, on_finished, backend.abort)
