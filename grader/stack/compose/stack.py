"""One scenario's stack as a compose project of its own; implements ``base.Stack``.

``up`` brings the stand-ins, the fault proxies and the grader's scanner up (their ports
waited for) and fills the API's working directory (``workdir``), each ``start_api`` is a
``compose run`` of the ``api`` service with its own environment (under ``stack_override``: no
capabilities, no new privileges, a read-only root, the grading's limits), and ``__exit__``
always ends with ``down -v``: no container, network or volume outlives it. MLflow is the
grading's one server (as on the local backend), joined to this project's network under the
name the proxies forward to.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Mapping, Sequence

import docker.errors
import requests
import yaml

from grader import contract
from grader.errors import StackError
from grader.sandbox.limits import Limits
from grader.stack.base import Fault, Service, with_overrides
from grader.stack.compose.api import ContainerApi
from grader.stack.compose.engine import COMPOSE_FILE, docker_client
from grader.stack.compose.project import ComposeProject
from grader.stack.compose.workdir import (API_HOME, WorkdirCopy, api_mounts, as_the_api_sees_it, fill,
                                          scanned_folders, scanner_mounts, volumes)
from grader.stack.fault_server import FaultControl
from grader.stack.services.control import LLMControl

_LLM_CONTROL_PORT = 4001
_FAULTS_CONTROL_PORT = 4100
_MLFLOW_ALIAS = "mlflow-upstream"
# The per-stack dependencies (MLflow is the grading's, shared).
_STANDINS = ("litellm", "qdrant", "tei-embeddings")
_ROUTE = re.compile(r"^--route=(?P<name>[\w.-]+)=(?P<port>\d+):")
# The grader's container that fills the API's working directory and looks for what it wrote.
SCANNER = "scanner"
_SCANNER_MEMORY = 256 * 1024 * 1024
@dataclass(frozen=True)
class ComposeImages:
    """The images a stack runs: the submission's API and the grader's own."""

    api: str
    standins: str
    mlflow: str

    def variables(self) -> dict[str, str]:
        """The compose file's variables naming these images."""
        return {"API_IMAGE": self.api, "GRADER_STANDINS_IMAGE": self.standins, "GRADER_MLFLOW_IMAGE": self.mlflow}


@cache
def service_ports() -> dict[Service, int]:
    """The port of each dependency, read off the fault proxies' routes in the compose file."""
    faults = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["faults"]["command"]
    routes = {match["name"]: int(match["port"]) for part in faults if (match := _ROUTE.match(part))}
    return {service: routes[service.value] for service in Service}


def service_urls() -> dict[Service, str]:
    """``http://<name>:<port>``: what the API is given for each dependency."""
    return {service: f"http://{service.value}:{port}" for service, port in service_ports().items()}


def without_healthchecks() -> dict:
    """An override file's content that turns the engine's healthchecks off: the grader polls
    the ports itself (``ComposeProject.wait_listening``)."""
    # The engine runs a first healthcheck one interval after start: a day's interval means none
    # during a grading (Compose v1 refuses `disable` beside the base file's other options).
    return {"services": {name: {"healthcheck": {"interval": "24h"}} for name in (*_STANDINS, "faults", "mlflow")}}


def stack_override(limits: Limits, images: ComposeImages, copy: WorkdirCopy) -> dict:
    """An override file's content for a scenario's stack: ``limits`` on the API's container, its
    read-only root and writable volumes (``workdir``), the grader's ``scanner`` of those volumes,
    and no healthchecks."""
    override = without_healthchecks()
    override["services"]["api"] = {
        "mem_limit": limits.memory_bytes, "pids_limit": limits.processes, "cpus": limits.cpus,
        "read_only": True, "volumes": api_mounts(copy), "environment": {"HOME": API_HOME},
    }
    override["services"][SCANNER] = {
        "image": images.standins, "init": True, "stop_grace_period": "2s",
        "command": ["sleep", "infinity"], "network_mode": "none", "read_only": True, "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"], "mem_limit": _SCANNER_MEMORY, "pids_limit": 32,
        "volumes": scanner_mounts(),
    }
    override["volumes"] = volumes(limits)
    return override


class ComposeStack:
    """A compose project named after the grading and the scenario; a context manager."""

    def __init__(self, name: str, checkout: Path, images: ComposeImages, mlflow, workdir: Path,
                 limits: Limits, copy: WorkdirCopy) -> None:
        """``mlflow``: the grading's MLflow container, joined to this stack's network; ``copy``:
        the API image's working directory, which each stack gets a writable copy of."""
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.limits = limits
        self._images = images
        self._copy = copy
        self._mlflow = mlflow
        self._token = secrets.token_urlsafe(24)
        project = f"grade-{secrets.token_hex(4)}-{slug}"
        self._limits_file = workdir / f"{project}.limits.yml"
        env = {"SUBMISSION_DIR": str(checkout), "GRADER_CONTROL_TOKEN": self._token, **images.variables()}
        self._project = ComposeProject(project, env, workdir, overrides=[self._limits_file])
        self._exit = ExitStack()
        self._apis: list[ContainerApi] = []
        self._stopped: set[Service] = set()
        self._lock = threading.Lock()
        self._count = 0
        self.closed = False

    @property
    def project(self) -> str:
        return self._project.name

    def __enter__(self) -> "ComposeStack":
        try:
            self._limits_file.write_text(yaml.safe_dump(stack_override(self.limits, self._images, self._copy)))
            self._exit.callback(self._limits_file.unlink, missing_ok=True)
            self._exit.callback(self._project.down)
            # All at once: the proxies connect to a dependency only when the API does.
            self._project.up([*_STANDINS, "faults", SCANNER], networks=["front", "deps"])
            self._scanner = self._project.containers(SCANNER)[0]
            fill(self._scanner, self._copy)
            self._deps = self._project.network("deps")
            self._join_mlflow()
            self._exit.callback(self._leave_mlflow)  # before `down`: the network goes with it
            for service in Service:
                if service is not Service.MLFLOW:
                    self._project.wait_listening(service.value, "deps", service_ports()[service])
            llm = self._project.wait_listening("litellm", "deps", _LLM_CONTROL_PORT)
            self.llm = LLMControl(f"http://{llm}:{_LLM_CONTROL_PORT}", self._token)
            self._exit.callback(self.llm.close)
            faults = self._project.wait_listening("faults", "deps", _FAULTS_CONTROL_PORT)
            self._faults = FaultControl(f"http://{faults}:{_FAULTS_CONTROL_PORT}", self._token)
            self._exit.callback(self._faults.close)
            self._exit.callback(self._kill_apis)
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()
        self.closed = True

    def service_url(self, service: Service) -> str:
        return service_urls()[service]

    def start_api(self, env: Mapping[str, str | None] | None = None) -> ContainerApi:
        """A new ``api`` container; the service URLs are the compose file's, the rest of the
        contract's variables as the local backend gives them (None: left unset)."""
        variables = with_overrides(contract.service_environment({s.value: url for s, url in service_urls().items()}), env)
        with self._lock:
            self._count += 1
            name = f"{self.project}-api-{self._count}"
        self._project.compose("run", "-d", "-T", "--no-deps", "--name", name, "api", extra_env=variables)
        api = ContainerApi(docker_client().containers.get(name), f"{self.project}_front", self.limits,
                           self._full_folders)
        with self._lock:
            self._apis.append(api)
        return api

    def inject_fault(self, service: Service, fault: Fault, delay: float = 0.0) -> None:
        """DOWN takes the dependency away: its container is stopped (MLflow, which the grading's
        stacks share, is cut from this stack's network instead), and its proxy stops listening
        so connections are refused as without one. The other faults go through the proxy."""
        self._faults.set_fault(service.value, fault, delay)
        if fault is not Fault.DOWN or service in self._stopped:
            return
        if service is Service.MLFLOW:
            self._leave_mlflow()
        else:
            self._project.compose("stop", "-t", "2", service.value)
        self._stopped.add(service)

    def clear_fault(self, service: Service) -> None:
        """Behave normally again; a stopped dependency is back and healthy before this returns."""
        if service in self._stopped:
            if service is Service.MLFLOW:
                self._join_mlflow()
            else:
                self._project.compose("start", service.value)
                self._project.wait_listening(service.value, "deps", service_ports()[service])
            self._stopped.discard(service)
        self._faults.set_fault(service.value, None)

    def files_written_since(self, since: float, containing: Sequence[str]) -> list[str]:
        """Searched by the grader's own program (``written``) in the scanner, which mounts the
        API's working directory, HOME and /tmp: paths as the API names them."""
        command = ["python", "-m", "grader.stack.compose.written", str(since - 0.5), json.dumps(list(containing)),
                   *scanned_folders()]
        result = self._scanner.exec_run(command)
        try:
            answer = json.loads(result.output.decode(errors="replace"))
            found = [as_the_api_sees_it(str(path), self._copy) for path in answer["found"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise StackError(f"the scan for written files gave no answer (exit {result.exit_code})") from exc
        return sorted(found)

    def _full_folders(self) -> list[str]:
        """The API's writable folders that are full, as the API names them (``written --full``)."""
        try:
            result = self._scanner.exec_run(["python", "-m", "grader.stack.compose.written", "--full",
                                             *scanned_folders()])
            return [as_the_api_sees_it(str(name), self._copy) for name in json.loads(result.output.decode())]
        except (docker.errors.DockerException, requests.RequestException, json.JSONDecodeError, TypeError,
                UnicodeDecodeError):
            return []  # no answer (the stack is gone): no limit named, the check's own reason stands

    def abort(self) -> None:
        """Take the project down now, from any thread (its owner's ``__exit__`` still runs)."""
        self._leave_mlflow()
        self._project.down()

    def _join_mlflow(self) -> None:
        self._deps.connect(self._mlflow, aliases=[_MLFLOW_ALIAS])

    def _leave_mlflow(self) -> None:
        import docker.errors

        try:
            self._deps.reload()
            if self._mlflow.id in self._deps.attrs.get("Containers", {}):
                self._deps.disconnect(self._mlflow)
        except (AttributeError, docker.errors.NotFound):
            pass  # not up yet, or already taken down (an abort): nothing joined any more

    def _kill_apis(self) -> None:
        with self._lock:
            apis, self._apis = self._apis, []
        for api in apis:
            api.kill()
