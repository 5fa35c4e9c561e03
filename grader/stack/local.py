"""The local backend: the exam's services as processes on loopback, no Docker needed.

``LocalBackend`` is one grading run: it installs the submission's environment once and
starts the one real MLflow server every scenario shares, and the fork server its stacks' stand-ins
come from. ``LocalStack`` is one scenario's stack: its own copy of the submission, its own
stand-ins (LLM, Qdrant, TEI, in a process of their own) and a fault proxy in front of every
dependency, MLflow included, so faults never cross stacks.
"""

from __future__ import annotations

import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

from grader import contract
from grader.checkout import UnsafePath, copy_tree, read_bytes, remove_tree, walk
from grader.sandbox import Confinement, Isolation
from grader.stack.base import Fault, Service, SubmissionUnrunnable, with_overrides
from grader.stack.faults import FaultProxy
from grader.stack.mlflow_server import MlflowServer
from grader.stack.ports import free_port
from grader.stack.process import LocalApiProcess
from grader.stack.services.control import LLMControl
from grader.stack.services.host import ServicesHost
from grader.stack.services.process import ServicesProcess
from grader.stack.venv import VenvResult, ensure_venv, requirements_problem

_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# The stand-ins start in ~1 s on an idle machine; a loaded CI runner grading several
# submissions at once has been seen to need more than 10 s.
_SERVICES_START_S = 60.0
MAX_SOURCE_BYTES = 1_000_000
# A fallback trace is a line of JSON; a file this large is not one, and is not read.
MAX_SCANNED_BYTES = 10_000_000


class StandIns(Protocol):
    """One stack's LLM, Qdrant and TEI stand-ins (a ``ServicesProcess`` or a forked set)."""

    llm: LLMControl

    def url(self, service: Service) -> str: ...

    def close(self) -> None: ...


def _standalone_stand_ins() -> StandIns:
    return ServicesProcess.start(timeout=_SERVICES_START_S)


class LocalBackend:
    """One grading run on this machine: the submission's venv and the shared MLflow server."""

    name = "local"

    def __init__(self, checkout: Path, workdir: Path, cache_root: Path, *, isolation: Isolation | None = None,
                 venv: VenvResult | None = None, own_mount_namespace: bool = False) -> None:
        """``isolation``: the sandbox and limits of every process of the submission (default:
        none). ``venv``: an environment already prepared (``prepare_venv``), not installed again.
        ``own_mount_namespace``: it runs in the stack phase's namespace, where MLflow's store
        may be a sized tmpfs."""
        self._own_mount_namespace = own_mount_namespace
        self.checkout = checkout
        self.workdir = workdir
        self.cache_root = cache_root
        self.isolation = isolation or Isolation.none()
        self._prepared = venv
        self._exit = ExitStack()
        self._venv: Future[VenvResult] | None = None
        self._problem: str | None = None
        self.mlflow_url = ""

    def __enter__(self) -> "LocalBackend":
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._problem = unrunnable_reason(self.checkout)
            pool = self._exit.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="venv"))
            if self._problem is None and self._prepared is not None:
                self._venv = Future()
                self._venv.set_result(self._prepared)
            elif self._problem is None:
                # The install and MLflow's start-up are both slow: overlap them.
                self._venv = pool.submit(prepare_venv, self.checkout, self.cache_root, self.isolation)
            host = ServicesHost.start(self.workdir / "stand-ins", timeout=_SERVICES_START_S)
            self._exit.callback(host.close)
            self._spawn_stand_ins = lambda: host.spawn(timeout=_SERVICES_START_S)
            mlflow = self._exit.enter_context(MlflowServer(self.workdir / "mlflow",
                                                           own_mount_namespace=self._own_mount_namespace))
            self.mlflow_url = mlflow.url
            if self._venv is not None:
                self.venv = self._venv.result()  # MachineError propagates: the grader's fault
                if not self.venv.ok:
                    self._problem = f"its requirements did not install: {self.venv.reason}"
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()

    def open_stack(self, name: str) -> "LocalStack":
        """A fresh stack for one scenario; SubmissionUnrunnable when the submission cannot run."""
        if self._problem is not None:
            raise SubmissionUnrunnable(self._problem)
        assert self.venv.python is not None
        return LocalStack(name, self.checkout, self.venv.python, self.mlflow_url, self.workdir, self.isolation,
                          start_stand_ins=self._spawn_stand_ins)


def prepare_venv(checkout: Path, cache_root: Path, isolation: Isolation | None = None) -> VenvResult:
    """The submission's environment, installed (sandboxed when ``isolation`` allows) or cached.

    Raises ``MachineError`` when the index is unreachable; a student's failure is in the result.
    """
    isolation = isolation or Isolation.none()
    return ensure_venv(checkout / "src" / "api" / "requirements.txt", cache_root / "venvs",
                       timeout_s=isolation.limits.install_s, isolation=isolation, source_root=checkout)


def unrunnable_reason(checkout: Path) -> str | None:
    """Why the submission cannot run at all (no main.py, unusable requirements, a link out of
    the checkout on the way to either), or None."""
    try:
        read_bytes(checkout, "src/api/main.py", max_bytes=MAX_SOURCE_BYTES)
    except UnsafePath as exc:
        return str(exc)
    return requirements_problem(checkout, "src/api/requirements.txt")


class LocalStack:
    """One scenario's stack; as a context manager it owns every process it started."""

    def __init__(self, name: str, checkout: Path, python: Path, mlflow_url: str, workdir: Path,
                 isolation: Isolation | None = None,
                 start_stand_ins: Callable[[], StandIns] = _standalone_stand_ins) -> None:
        """``start_stand_ins``: where the stack's stand-ins come from (default: a process of
        their own; a grading forks them from its ``ServicesHost``)."""
        self.name = name
        self._start_stand_ins = start_stand_ins
        self.isolation = isolation or Isolation.none()
        self._checkout = checkout
        self._python = python
        self._mlflow_url = mlflow_url
        self._root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
        self._exit = ExitStack()
        self._apis: list[LocalApiProcess] = []
        self._lock = threading.Lock()
        self._proxies: dict[Service, FaultProxy] = {}

    def __enter__(self) -> "LocalStack":
        try:
            self.repo = self._root / "repo"
            # The API writes where it runs (fallback traces, caches): each stack its own copy.
            copy_tree(self._checkout, self.repo, skip=frozenset({".git"}))
            self.home = self._root / "home"
            self.home.mkdir()
            (self._root / "tmp").mkdir()
            services = self._start_stand_ins()
            self._exit.callback(services.close)
            self.llm = services.llm
            for service in (Service.LLM, Service.QDRANT, Service.TEI):
                self._add_proxy(service, services.url(service))
            self._add_proxy(Service.MLFLOW, self._mlflow_url)
            self._exit.callback(self._kill_apis)
        except BaseException:
            self._exit.close()
            remove_tree(self._root)
            raise
        return self

    def _add_proxy(self, service: Service, url: str) -> None:
        proxy = FaultProxy.in_front_of(url)
        self._exit.callback(proxy.close)
        self._proxies[service] = proxy

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._exit.close()
        finally:
            remove_tree(self._root)

    def service_url(self, service: Service) -> str:
        return self._proxies[service].url

    def start_api(self, env: Mapping[str, str | None] | None = None) -> LocalApiProcess:
        variables = with_overrides(self._base_environment(), env)
        api = LocalApiProcess(self._python, self.repo / "src" / "api", variables, free_port(),
                              output_limit_bytes=self.isolation.limits.output_bytes, confinement=self.confinement())
        with self._lock:
            self._apis.append(api)
        return api

    def confinement(self) -> Confinement | None:
        """The API sees its venv read-only and writes only to this stack's copy, HOME and TMPDIR
        (None when no confinement was asked for: plain processes, as before sandboxing)."""
        if not self.isolation.confine:
            return None
        # The venv's bin/python is a symlink: bind the venv itself, not what it resolves to.
        venv = self._python.parent.parent
        return Confinement(self.isolation, read_only=(venv,),
                           read_write=(self.repo, self.home, self._root / "tmp"))

    def _base_environment(self) -> dict[str, str]:
        """Only what a process needs and the contract's variables: nothing of the grader's own."""
        urls = {service.value: self.service_url(service) for service in Service}
        return {
            "PATH": f"{self._python.parent}:{_SYSTEM_PATH}",
            "HOME": str(self.home),
            "TMPDIR": str(self._root / "tmp"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # Line arrival times are evidence: no block buffering of the student's prints.
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **contract.service_environment(urls),
        }

    def inject_fault(self, service: Service, fault: Fault, delay: float = 0.0) -> None:
        self._proxies[service].set_fault(fault, delay)

    def clear_fault(self, service: Service) -> None:
        self._proxies[service].set_fault(None)

    def files_written_since(self, since: float, containing: Sequence[str]) -> list[str]:
        """Regular files written since ``since`` holding a needle. The API writes these folders
        while they are walked: a tree however deep, files that vanish, links (never followed)
        and files over ``MAX_SCANNED_BYTES`` (never read whole) cannot break the scan."""
        needles = [text.encode() for text in containing]
        written = []
        for base in (self.repo, self.home, self._root / "tmp"):
            for entry in walk(base, skip=frozenset({"__pycache__"})):
                if entry.kind != "file" or entry.mtime < since - 0.5 or entry.size > MAX_SCANNED_BYTES:
                    continue
                try:
                    content = read_bytes(base, entry.relative, max_bytes=MAX_SCANNED_BYTES)
                except UnsafePath:
                    continue
                if _holds_any(content, needles):
                    written.append((base / entry.relative).relative_to(self._root).as_posix())
        return written

    def _kill_apis(self) -> None:
        with self._lock:
            apis, self._apis = self._apis, []
        for api in apis:
            api.kill()


def _holds_any(content: bytes, needles: list[bytes]) -> bool:
    return any(needle in content for needle in needles)
