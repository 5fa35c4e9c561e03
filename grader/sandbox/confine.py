"""One confined process: its sandbox, its cgroup, its rlimits and a watchdog naming any limit hit.

``Confinement`` says what a process may see and use; ``Confinement.launch`` builds the command
line and the cgroup; ``Confined.watch`` kills the process tree the moment a limit is exceeded
and keeps the one line that names it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import psutil

from grader.sandbox.bwrap import SandboxSpec, bwrap_command
from grader.sandbox.cgroup import Cgroup
from grader.sandbox.detect import Isolation
from grader.sandbox.limits import human_bytes

_WATCH_INTERVAL_S = 0.25
_DISK_WATCH_INTERVAL_S = 0.5
# The shell's ``ulimit -f`` counts 512-byte blocks, ``ulimit -v`` KiB.
_FSIZE_BLOCK = 512


@dataclass(frozen=True)
class Confinement:
    """What a submission's process may see (``read_only``, ``read_write``) under ``isolation``."""

    isolation: Isolation
    read_only: tuple[Path, ...] = ()
    read_write: tuple[Path, ...] = ()

    def launch(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> "Confined":
        """The confined command line for ``argv`` and the cgroup it will join (if any)."""
        spec = SandboxSpec(chdir=cwd, env=env, read_only=self.read_only, read_write=self.read_write,
                           tmp_bytes=self.isolation.limits.disk_bytes)
        command, popen_env, cgroup = confined_command(self.isolation, name, spec, argv)
        return Confined(self, command, popen_env, cgroup)


def confined_command(isolation: Isolation, name: str, spec: SandboxSpec, argv: Sequence[str], *,
                     file_size_limit: bool = True) -> tuple[list[str], dict[str, str], Cgroup | None]:
    """``argv`` in the sandbox ``spec`` describes (when ``isolation`` has bubblewrap), in a new
    cgroup with the limits (when it has cgroups) and under the rlimits: the command line, the
    environment to start it with, and the cgroup the caller removes when it is done.
    ``file_size_limit``: also cap each file at the disk limit (not for an install, whose
    packages' files may be larger)."""
    limits = isolation.limits
    cgroup = None
    if isolation.cgroups is not None:
        try:
            cgroup = Cgroup.create(name, limits, isolation.cgroups)
        except OSError:
            cgroup = None  # reported by limit_lines(): the kernel refused this one
    inner = list(argv)
    if isolation.bwrap:
        inner = bwrap_command(isolation.bwrap, replace(spec, unprivileged=isolation.unprivileged), argv)
    # A shell joins the cgroup and sets the rlimits, then becomes the command: the cgroup
    # holds it from its first instruction, and no Python runs between fork and exec.
    steps = [f"echo $$ > {shlex.quote(str(procs))}" for procs in (cgroup.procs_files if cgroup else [])]
    steps.append("ulimit -c 0")
    if file_size_limit:
        steps.append(f"ulimit -f {max(1, limits.disk_bytes // _FSIZE_BLOCK)}")
    if cgroup is None:  # the address-space limit is a coarse stand-in for a memory cgroup
        steps.append(f"ulimit -v {limits.address_space_bytes // 1024}")
    script = " && ".join([*steps, 'exec "$@"'])
    command = ["/bin/sh", "-c", script, "sandbox-launch", *inner]
    popen_env = {"PATH": "/usr/bin:/bin"} if isolation.bwrap else dict(spec.env)
    return command, popen_env, cgroup


class Confined:
    """A launched confined process's limits: watched while it runs, released by ``close``."""

    def __init__(self, confinement: Confinement, argv: list[str], env: dict[str, str], cgroup: Cgroup | None) -> None:
        self.confinement = confinement
        self.argv = argv
        self.env = env
        self.cgroup = cgroup
        self._hit: str | None = None
        self._lock = threading.Lock()
        self._baseline = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._command_pid: int | None = None
        self._stopped = threading.Event()

    @property
    def sandboxed(self) -> bool:
        return bool(self.confinement.isolation.bwrap)

    def watch(self, proc: subprocess.Popen[bytes], on_hit: Callable[[], None]) -> None:
        """Check the limits in a thread until ``proc`` ends; ``on_hit`` kills it when one is hit."""
        self._proc = proc
        self._baseline = _size_of(self.confinement.read_write)
        threading.Thread(target=self._watch, args=(proc, on_hit), daemon=True, name="limits").start()

    def _watch(self, proc: subprocess.Popen[bytes], on_hit: Callable[[], None]) -> None:
        next_disk = 0.0
        while not self._stopped.is_set():
            running = proc.poll() is None
            hit = self.cgroup.limit_hit() if self.cgroup is not None else None
            if hit is None and time.monotonic() >= next_disk:
                hit = self._disk_hit(proc)
                next_disk = time.monotonic() + _DISK_WATCH_INTERVAL_S
            if hit is not None:
                with self._lock:
                    self._hit = self._hit or hit
                on_hit()
                return
            if not running:
                return
            self._stopped.wait(_WATCH_INTERVAL_S)

    def _disk_hit(self, proc: subprocess.Popen[bytes]) -> str | None:
        limit = self.confinement.isolation.limits.disk_bytes
        written = _size_of(self.confinement.read_write) - self._baseline + self._private_tmp_used()
        if written >= limit:
            return f"disk limit hit ({human_bytes(limit)} written)"
        return None

    def _private_tmp_used(self) -> int:
        """Bytes in the sandbox's own /tmp (a tmpfs), seen through its root from outside."""
        pid = self._namespace_init()
        if pid is None:
            return 0
        try:
            # Until bwrap has pivoted into the sandbox, this path is still our own /tmp.
            if os.stat(f"/proc/{pid}/root/tmp").st_dev == os.stat("/tmp").st_dev:
                return 0
            stats = os.statvfs(f"/proc/{pid}/root/tmp")
        except OSError:
            return 0
        return (stats.f_blocks - stats.f_bfree) * stats.f_frsize

    def _namespace_init(self) -> int | None:
        """The host pid of bwrap's PID-namespace init (the outer bwrap's only child)."""
        if not self.sandboxed or self._proc is None:
            return None
        try:
            children = psutil.Process(self._proc.pid).children()
        except psutil.Error:
            return None
        return children[0].pid if children else None

    def command_pid(self) -> int | None:
        """The host pid of the command itself (the PID-namespace init's first child)."""
        if self._proc is None:
            return None
        if not self.sandboxed:
            return self._proc.pid
        if self._command_pid is None:
            init = self._namespace_init()
            try:
                children = psutil.Process(init).children() if init else []
            except psutil.Error:
                children = []
            self._command_pid = min((c.pid for c in children), default=None)
        return self._command_pid

    def send_signal(self, signum: int) -> bool:
        """Deliver ``signum`` to the command (bwrap forwards nothing); False if it is not found."""
        pid = self.command_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return False
        return True

    def limit_hit(self) -> str | None:
        """The killing limit, named; read from the cgroup and the disk too if the watchdog missed it
        (a writer stopped by the per-file limit, EFBIG, exits by itself between two disk checks)."""
        with self._lock:
            if self._hit is None and self.cgroup is not None:
                self._hit = self.cgroup.limit_hit()
            if self._hit is None and self._proc is not None and self._proc.poll() is not None:
                self._hit = self._disk_hit(self._proc)
            return self._hit

    def close(self) -> None:
        """Stop watching, record a last hit, kill what is left in the cgroup and remove it."""
        self._stopped.set()
        self.limit_hit()
        if self.cgroup is not None:
            self.cgroup.remove()


def exit_code_of(returncode: int | None, sandboxed: bool) -> int | None:
    """The command's exit code as ``subprocess`` reports it: bwrap turns death by signal N
    into status 128+N, which becomes -N again (a real exit status above 128 reads the same)."""
    if returncode is None or not sandboxed:
        return returncode
    if 128 < returncode < 128 + signal.NSIG:
        return -(returncode - 128)
    return returncode


def _size_of(paths: Sequence[Path]) -> int:
    """Apparent size of every regular file under ``paths`` (symlinks not followed)."""
    total = 0
    stack = [str(p) for p in paths]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        pass
        except OSError:
            pass
    return total
