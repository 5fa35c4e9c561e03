"""The submission's Python environment: a virtualenv built by ``uv`` from its requirements.

Environments are cached by the requirements' content and the interpreter, so grading a
whole class installs each distinct requirements file once. A requirement that cannot be
installed is the student's fault (``VenvResult(ok=False)``), and so is a package source the
requirements name that cannot be reached; the machine's own index unreachable is the
machine's (``MachineError``).

Installing runs code the student chose (a build script of any source-only package), so the
install gets nothing shared: a throwaway uv cache of its own (never the cache the grader's own
environment is hard-linked from), copies instead of links, no uv or pip configuration but the
machine's environment (the checkout's ``uv.toml``, ``[tool.uv]`` and pip files are ignored:
``UV_NO_CONFIG``, ``PIP_CONFIG_FILE=/dev/null``), no credentials, and, with a sandbox, the same
bubblewrap, cgroup limits (CPU included) and sized ``/tmp`` as the API. Its output is kept head
and tail; the grader's log of it is written beside the cache, where no install ever wrote.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Mapping

import uv
from packaging.requirements import InvalidRequirement, Requirement

from grader.cache import tree_hash
from grader.checkout import UnsafePath, read_bytes, remove_tree
from grader.errors import MachineError
from grader.sandbox.bwrap import SandboxSpec
from grader.sandbox.confine import confined_command
from grader.sandbox.detect import Isolation
from grader.stack.process import BoundedOutput, kill_tree

# How this machine reaches a package index: its CA bundle and proxies.
INDEX_ACCESS_ENV = frozenset({
    "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
})  # fmt: skip
# What uv needs from the grader's environment: where to find programs, and how to reach the
# machine's index (its URL, proxies, the CA bundle). Nothing else leaks in: no token, no
# UV_* credential, no HOME (a build script would read the grader's files there).
_PASSED_ENV = {
    "PATH", *INDEX_ACCESS_ENV,
    "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_FIND_LINKS",
    "UV_INDEX_STRATEGY", "UV_HTTP_TIMEOUT", "UV_HTTP_RETRIES", "UV_NATIVE_TLS", "UV_OFFLINE",
    "UV_NO_CACHE",
}  # fmt: skip
# Set whatever the caller's environment says: see the module's docstring.
_FORCED_ENV = {
    "UV_NO_CONFIG": "1",
    "PIP_CONFIG_FILE": os.devnull,
    "UV_LINK_MODE": "copy",
    "UV_PYTHON_DOWNLOADS": "never",
    # uv's own threads and bytecode workers count against the install's process limit: at
    # its defaults (50 downloads at once, a thread and a compiler per core) it reached more
    # than 64 tasks on its own, and a fork refused to uv would read as the student's limit.
    "UV_CONCURRENT_DOWNLOADS": "8",
    "UV_CONCURRENT_BUILDS": "2",
    "UV_CONCURRENT_INSTALLS": "2",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
}
# What the cached venvs are: part of the key, so venvs built another way are never reused.
_LAYOUT = b"venv layout 2: bytecode compiled, private cache, checkout configuration ignored"
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def index_access_env() -> dict[str, str]:
    """This process's settings for reaching a package index, for a container that must reach it
    the same way (its files, such as the CA bundle, are at the same paths in the images here)."""
    return {name: value for name, value in os.environ.items() if name in INDEX_ACCESS_ENV}

# Transport failures: the index was never reached, whatever the requirements say.
_MACHINE_MARKERS = (
    "error sending request",
    "dns error",
    "failed to lookup address",
    "connection refused",
    "connection reset",
    "timed out",
    "network is unreachable",
    "tcp connect error",
)
# "Failed to fetch" with an HTTP status means a server answered (e.g. a 404 URL requirement).
_HTTP_STATUS = re.compile(r"HTTP status (?:client|server) error|status code", re.I)



@dataclass(frozen=True)
class VenvResult:
    """The outcome of preparing an environment; ``log`` is uv's output, kept as evidence."""

    ok: bool
    log: str
    python: Path | None = None
    cached: bool = False
    seconds: float = 0.0
    reason: str | None = None


def requirements_problem(root: Path, relative: str) -> str | None:
    """A one-line reason why ``root/relative`` is not a usable requirements file, or None.

    It is read inside ``root`` without following links (``grader.checkout``): a link out of the
    checkout is named, never read or quoted. Option lines (``-r``, ``--index-url``, ``-e``...)
    and bare paths or URLs are left to uv.
    """
    try:
        text = read_bytes(root, relative).decode("utf-8")
    except UnsafePath as exc:
        return f"requirements file {exc}"
    except UnicodeDecodeError as exc:
        return f"requirements file {relative} is not UTF-8 ({exc.reason})"
    name = PurePosixPath(relative).name
    for number, line in enumerate(_logical_lines(text), start=1):
        spec = re.split(r"\s+#|\s+--?\w", line, maxsplit=1)[0].strip()
        if not spec or spec.startswith(("-", "#", ".", "/")) or "://" in spec.split("@")[0]:
            continue
        try:
            Requirement(spec)
        except InvalidRequirement as exc:
            return f"{name} line {number} does not parse: {spec!r} ({str(exc).splitlines()[0]})"
    return None


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined, as pip reads them."""
    return re.sub(r"\\\r?\n", " ", text).splitlines()


def ensure_venv(
    requirements: Path,
    cache_root: Path,
    *,
    python: str = sys.executable,
    timeout_s: float = 600,
    extra_env: Mapping[str, str] | None = None,
    isolation: Isolation | None = None,
    source_root: Path | None = None,
) -> VenvResult:
    """An environment with ``requirements`` installed on interpreter ``python`` (a path).

    Reuses the cached one when it exists. Never raises for the student's requirements;
    raises ``MachineError`` when the machine's index cannot be reached or the install
    outlives ``timeout_s``. ``extra_env`` adds to uv's environment (e.g. ``UV_INDEX_URL``).
    ``requirements`` is read inside ``source_root`` (default: its directory), links not
    followed. With a bubblewrap in ``isolation``, uv (and every build backend it runs) sees
    only the system, the interpreter, ``source_root`` read-only, the venv being built and its
    own cache; it keeps the network to reach the index.
    """
    root = source_root or requirements.parent
    relative = requirements.relative_to(root).as_posix()
    problem = requirements_problem(root, relative)
    if problem is not None:
        return VenvResult(ok=False, log="", reason=problem)
    started = time.monotonic()
    isolation = isolation or Isolation.none()
    env = _uv_env(extra_env)
    cache_root.mkdir(parents=True, exist_ok=True)
    content = read_bytes(root, relative)
    key = _cache_key(content, python, root)
    final = cache_root / key
    # One builder per key: a concurrent caller waits here, then finds the result cached.
    with open(cache_root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return _result(final, cache_root, cached=True, started=started)
        building = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_root))
        # Builds have uv's cache writable: a shared one would let this submission plant a wheel
        # that later submissions install, or write through hard links into the grader's own
        # packages. This one costs a download of every package once per distinct requirements.
        private_cache = Path(tempfile.mkdtemp(prefix=f".{key}.uv-cache.", dir=cache_root))
        env["UV_CACHE_DIR"] = str(private_cache)
        try:
            install = _Install(building, root, requirements, env, isolation, deadline=started + timeout_s,
                               writable=(building, private_cache))
            ok, log = install.run(python, content)
            if not ok:
                return VenvResult(ok=False, log=log, reason=_student_reason(log), seconds=_since(started))
            # Written by the grader beside the cache: the venv itself was the install's to write.
            (cache_root / f"{key}.log").write_text(log, encoding="utf-8")
            # The venv is relocatable, so renaming it into place is the atomic "done" marker.
            building.rename(final)
        finally:
            remove_tree(building)
            remove_tree(private_cache)
    return _result(final, cache_root, cached=False, started=started)


class _Install:
    """The two uv steps of one install, sandboxed and limited as ``isolation`` allows."""

    def __init__(self, target: Path, root: Path, requirements: Path, env: dict[str, str], isolation: Isolation,
                 deadline: float, writable: tuple[Path, ...]) -> None:
        self.target, self.root, self.requirements = target, root, requirements
        self.env, self.isolation, self.deadline, self.writable = env, isolation, deadline, writable

    def run(self, python: str, content: bytes) -> tuple[bool, str]:
        """Create the venv in ``target`` and install into it; (success, uv's output)."""
        uv_bin = uv.find_uv_bin()
        if self.isolation.bwrap:
            # The grader's own venv is not visible inside: name the uv binary and the base
            # interpreter by their real paths (the cache key hashes the interpreter's identity).
            uv_bin = str(Path(uv_bin).resolve())
            python = str(Path(python).resolve())
        steps = [
            [uv_bin, "venv", "--relocatable", "--allow-existing", "--python", python, str(self.target)],
            # Compiled once here: every API start then reads the bytecode instead of compiling
            # each library again (it may not write it: its venv is read-only).
            [uv_bin, "pip", "install", "--compile-bytecode", "-r", str(self.requirements.absolute()),
             "--python", str(self.target / "bin" / "python")],
        ]
        log = ""
        for command in steps:
            code, output = self._run(command)
            log += f"$ {' '.join(command)}\n{output}"
            if code != 0:
                if _is_machine_failure(output) and not names_package_source(content):
                    raise MachineError(f"package index unreachable while installing {self.requirements.name}: "
                                       f"{_first_error(output)}")
                return False, log  # the student's failure, a source they named included
        return True, log

    def _run(self, command: list[str]) -> tuple[int, str]:
        """Run one step to completion or until the deadline; its exit code and output (head and
        tail kept, as the API's are)."""
        limits = self.isolation.limits
        workdir = self.requirements.absolute().parent  # where ``./pkg`` lines mean what they say
        argv, env, cgroup = command, self.env, None
        if self.isolation.confine:
            spec = SandboxSpec(chdir=workdir, env=self.env,
                               read_only=(self.root.resolve(), Path(command[0]).resolve()),
                               read_write=tuple(path.absolute() for path in self.writable),
                               tmp_bytes=limits.disk_bytes)
            argv, env, cgroup = confined_command(self.isolation, "install", spec, command, file_size_limit=False)
        output = BoundedOutput(limits.output_bytes)
        try:
            # Own session, so a timeout also kills the build backends uv spawned.
            proc = subprocess.Popen(argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            reader = threading.Thread(target=output.pump, args=(proc.stdout, "uv"), daemon=True, name="install")
            reader.start()
            try:
                proc.wait(timeout=max(0.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_tree(proc)
                step = " ".join(command[1:3])
                raise MachineError(f"uv {step} did not finish in time for the submission's requirements") from None
            finally:
                if cgroup is not None:
                    cgroup.kill_all()  # a build's daemon must not outlive the install
                reader.join(timeout=5)
            hit = cgroup.limit_hit() if cgroup is not None else None
        finally:
            if cgroup is not None:
                cgroup.remove()
        text = "\n".join(line.text for line in output.lines())
        if output.dropped_bytes:
            text += f"\n[{output.dropped_bytes} bytes of output dropped: output limit]"
        if hit is not None:
            text += f"\nerror: the install hit a limit: {hit}"
        return proc.returncode, text + "\n"


def _uv_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """uv's environment: the machine's index settings without any credential in their URLs,
    then the forced settings."""
    env = {k: v for k, v in {**os.environ, **(extra or {})}.items() if k in _PASSED_ENV}
    env = {k: _URL_CREDENTIALS.sub("", v) if k.startswith("UV_") else v for k, v in env.items()}
    return {**env, **_FORCED_ENV}


def refers_to_local_files(requirements: bytes) -> bool:
    """Whether a line names a file of the checkout (``./pkg``, ``-e .``, ``-r base.txt``,
    ``file:``): then the environment depends on more than the requirements' own text."""
    return any(spec.startswith((".", "/", "~", "-r", "-c", "-e", "--requirement", "--constraint", "--editable"))
               or "file:" in spec for spec in _specs(requirements))


def names_package_source(requirements: bytes) -> bool:
    """Whether the requirements name where packages come from (an index, links, a URL): then a
    source that cannot be reached is the student's choice, not the machine's failure."""
    return any("://" in spec or spec.startswith(("-i", "--index-url", "--extra-index-url", "-f", "--find-links"))
               for spec in _specs(requirements))


def _specs(requirements: bytes) -> list[str]:
    """Each logical line of a requirements file, its trailing comment removed."""
    return [line.split(" #", 1)[0].strip() for line in _logical_lines(requirements.decode("utf-8", errors="replace"))]


def _cache_key(requirements: bytes, python: str, source_root: Path) -> str:
    """Hash of the requirements and of the interpreter's version and installation, and of the
    whole checkout when the requirements name files in it (two students' ``./pkg`` differ)."""
    try:
        identity = subprocess.run(
            [python, "-c", "import sys; print(sys.version); print(sys.base_prefix)"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise MachineError(f"interpreter {python} unusable for the submission's venv: {exc}") from None
    local = tree_hash(source_root).encode() if refers_to_local_files(requirements) else b""
    parts = (_LAYOUT, identity.encode(), requirements, local)
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:24]


def _result(venv: Path, cache_root: Path, *, cached: bool, started: float) -> VenvResult:
    log_file = cache_root / f"{venv.name}.log"
    log = log_file.read_text(encoding="utf-8") if log_file.is_file() else ""
    return VenvResult(ok=True, log=log, python=venv / "bin" / "python", cached=cached, seconds=_since(started))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _is_machine_failure(output: str) -> bool:
    lowered = output.lower()
    if "failed to fetch" in lowered and not _HTTP_STATUS.search(output):
        return True
    return any(marker in lowered for marker in _MACHINE_MARKERS)


def _first_error(output: str) -> str:
    """The most specific line of uv's error: the last ``cause:``, else the ``error:`` line."""
    lines = [line.strip() for line in output.splitlines()]
    causes = [line.removeprefix("cause:").strip() for line in lines if line.startswith("cause:")]
    errors = [line.removeprefix("error:").strip() for line in lines if line.startswith("error:")]
    if causes and errors and errors[0].startswith("Failed to build"):
        return f"{errors[0]}: {causes[-1]}"[:300]
    return (causes or errors or [line for line in lines if line] or ["uv failed without output"])[-1][:300]


def _student_reason(output: str) -> str:
    """One line naming what could not be installed, from uv's output."""
    if _is_machine_failure(output):
        return f"a package source the requirements name could not be reached: {_first_error(output)}"
    missing = re.search(r"Because ([\w.\-\[\]]+) was not found in the package registry", output)
    if missing:
        return f"requirement {missing.group(1)} not found in the package registry"
    no_version = re.search(r"there is no version of (\S+?)(?: and|,|$)", output, re.M)
    if no_version:
        return f"no version of {no_version.group(1)} is available"
    return _first_error(output)
