"""The submission's Python environment: a virtualenv built by ``uv`` from its requirements.

Environments are cached by the requirements' content and the interpreter, so grading a
whole class installs each distinct requirements file once. A requirement that cannot be
installed is the student's fault (``VenvResult(ok=False)``); an index that cannot be
reached is the machine's (``MachineError``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import uv
from packaging.requirements import InvalidRequirement, Requirement

from grader.cache import tree_hash
from grader.errors import MachineError
from grader.sandbox.bwrap import SandboxSpec, bwrap_command
from grader.sandbox.detect import Isolation
from grader.stack.process import kill_tree

# How this machine reaches a package index: its CA bundle and proxies.
INDEX_ACCESS_ENV = frozenset({
    "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
})  # fmt: skip
# What uv needs from the grader's environment: where to find things, its own settings,
# and how to reach the index. Nothing else leaks in.
_PASSED_ENV = {"PATH", "HOME", "TMPDIR", "XDG_CACHE_HOME", *INDEX_ACCESS_ENV}


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

_LOG_NAME = "grader-install.log"


@dataclass(frozen=True)
class VenvResult:
    """The outcome of preparing an environment; ``log`` is uv's output, kept as evidence."""

    ok: bool
    log: str
    python: Path | None = None
    cached: bool = False
    seconds: float = 0.0
    reason: str | None = None


def requirements_problem(path: Path) -> str | None:
    """A one-line reason why ``path`` is not a usable requirements file, or None if it is.

    Option lines (``-r``, ``--index-url``, ``-e``...) and bare paths or URLs are left to uv.
    """
    if not path.is_file():
        return f"requirements file missing: {path.name}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"requirements file unreadable: {exc}"
    for number, line in enumerate(_logical_lines(text), start=1):
        spec = re.split(r"\s+#|\s+--?\w", line, maxsplit=1)[0].strip()
        if not spec or spec.startswith(("-", "#", ".", "/")) or "://" in spec.split("@")[0]:
            continue
        try:
            Requirement(spec)
        except InvalidRequirement as exc:
            return f"{path.name} line {number} does not parse: {spec!r} ({str(exc).splitlines()[0]})"
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
    raises ``MachineError`` when the index cannot be reached or the install outlives
    ``timeout_s``. ``extra_env`` adds to uv's environment (e.g. ``UV_INDEX_URL``).
    With a bubblewrap in ``isolation``, uv (and every build backend it runs) sees only the
    system, the interpreter, ``source_root`` read-only (default: the requirements' directory),
    the venv being built and uv's cache; it keeps the network to reach the index.
    """
    problem = requirements_problem(requirements)
    if problem is not None:
        return VenvResult(ok=False, log="", reason=problem)
    started = time.monotonic()
    env = _uv_env(extra_env)
    cache_root.mkdir(parents=True, exist_ok=True)
    content = requirements.read_bytes()
    key = _cache_key(content, python, source_root or requirements.parent)
    final = cache_root / key
    # One builder per key: a concurrent caller waits here, then finds the result cached.
    with open(cache_root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return _result(final, cached=True, started=started)
        building = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_root))
        private_cache = None
        try:
            if runs_students_build_code(content):
                # Builds have uv's cache writable: a shared one would let this submission plant a
                # wheel that later submissions install (bubblewrap 0.8 has no overlay to give a
                # throwaway view of it). This one costs a download of every package.
                private_cache = Path(tempfile.mkdtemp(prefix=f".{key}.uv-cache.", dir=cache_root))
                env["UV_CACHE_DIR"] = str(private_cache)
            sandbox = None
            if isolation is not None and isolation.confine and isolation.bwrap:
                sandbox = (isolation.bwrap,
                           _install_sandbox(building, requirements, source_root or requirements.parent, env))
            ok, log = _build(building, requirements, python, env, deadline=started + timeout_s, sandbox=sandbox)
            if not ok:
                return VenvResult(ok=False, log=log, reason=_student_reason(log), seconds=_since(started))
            (building / _LOG_NAME).write_text(log, encoding="utf-8")
            # The venv is relocatable, so renaming it into place is the atomic "done" marker.
            building.rename(final)
        finally:
            shutil.rmtree(building, ignore_errors=True)
            if private_cache is not None:
                shutil.rmtree(private_cache, ignore_errors=True)
    return _result(final, cached=False, started=started)


def _install_sandbox(target: Path, requirements: Path, source_root: Path, env: dict[str, str]) -> SandboxSpec:
    """What uv may see while it installs: the sources read-only, the venv and its cache writable.
    It runs from the requirements' directory, where ``./pkg`` lines mean what they say."""
    home = Path(env.get("HOME", "/nonexistent"))
    cache = Path(env.get("UV_CACHE_DIR") or Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "uv")
    cache.mkdir(parents=True, exist_ok=True)
    env["UV_CACHE_DIR"] = str(cache.absolute())
    read_only = [source_root.resolve(), Path(uv.find_uv_bin()).resolve()]
    user_config = home / ".config" / "uv"  # the machine's index settings, if any
    if user_config.is_dir():
        read_only.append(user_config)
    return SandboxSpec(chdir=requirements.resolve().parent, env=env, read_only=tuple(read_only),
                       read_write=(target.absolute(), cache.absolute()), extra_etc=("uv",))


def _build(target: Path, requirements: Path, python: str, env: dict[str, str], deadline: float,
           sandbox: tuple[str, SandboxSpec] | None = None) -> tuple[bool, str]:
    """Create the venv in ``target`` and install into it; (success, uv's output)."""
    uv_bin = uv.find_uv_bin()
    if sandbox is not None:
        # The grader's own venv is not visible inside: name the uv binary and the base
        # interpreter by their real paths (the cache key hashes the interpreter's identity).
        uv_bin = str(Path(uv_bin).resolve())
        python = str(Path(python).resolve())
    steps = [
        [uv_bin, "venv", "--relocatable", "--allow-existing", "--python", python, str(target)],
        [uv_bin, "pip", "install", "-r", str(requirements.resolve()), "--python", str(target / "bin" / "python")],
    ]
    log = ""
    for command in steps:
        argv = command if sandbox is None else bwrap_command(sandbox[0], sandbox[1], command)
        code, output = _run(argv, env, deadline)
        log += f"$ {' '.join(command)}\n{output}"
        if code != 0:
            if _is_machine_failure(output):
                raise MachineError(f"package index unreachable while installing {requirements}: {_first_error(output)}")
            return False, log
    return True, log


def _run(command: list[str], env: dict[str, str], deadline: float) -> tuple[int, str]:
    """Run ``command`` to completion or until ``deadline``; its exit code and merged output."""
    # Own session, so a timeout also kills the build backends uv spawned.
    proc = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        proc.stdout.close()  # type: ignore[union-attr]  # piped above
        step = " ".join(command[1:3])
        raise MachineError(f"uv {step} did not finish in time for the submission's requirements") from None
    return proc.returncode, out.decode("utf-8", errors="replace")


def _uv_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV or k.startswith("UV_")}
    env.update(extra or {})
    return env


def refers_to_local_files(requirements: bytes) -> bool:
    """Whether a line names a file of the checkout (``./pkg``, ``-e .``, ``-r base.txt``,
    ``file:``): then the environment depends on more than the requirements' own text."""
    return any(spec.startswith((".", "/", "~", "-r", "-c", "-e", "--requirement", "--constraint", "--editable"))
               or "file:" in spec for spec in _specs(requirements))


def runs_students_build_code(requirements: bytes) -> bool:
    """Whether the install may build code the student chose rather than the index's packages:
    a file of the checkout, a URL (VCS, archive), or an index or link the requirements name."""
    return refers_to_local_files(requirements) or any(
        "://" in spec or spec.startswith(("-i", "--index-url", "--extra-index-url", "-f", "--find-links"))
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
    return hashlib.sha256(identity.encode() + b"\0" + requirements + b"\0" + local).hexdigest()[:24]


def _result(venv: Path, *, cached: bool, started: float) -> VenvResult:
    log_file = venv / _LOG_NAME
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
    missing = re.search(r"Because ([\w.\-\[\]]+) was not found in the package registry", output)
    if missing:
        return f"requirement {missing.group(1)} not found in the package registry"
    no_version = re.search(r"there is no version of (\S+?)(?: and|,|$)", output, re.M)
    if no_version:
        return f"no version of {no_version.group(1)} is available"
    return _first_error(output)
