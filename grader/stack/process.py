"""The submission's API as a local process, and killing a process tree for good.

The student's code is untrusted: it may flood its output, ignore SIGTERM, fork children
or detach them into new sessions. ``LocalApiProcess`` bounds what it keeps of the output
and ``kill_tree`` leaves no descendant behind.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Callable, Mapping

import httpx
import psutil

from grader.sandbox.confine import Confined, Confinement, exit_code_of
from grader.sandbox.limits import human_bytes
from grader.stack.base import LogLine

# Longer lines keep their start only: a flood without newlines must not be read whole.
_MAX_LINE_BYTES = 64 * 1024
# Charged per kept line on top of its bytes, so a flood of empty lines is bounded too.
_LINE_OVERHEAD_BYTES = 128
# The final line of a traceback: "ModuleNotFoundError: No module named 'x'", "pkg.mod.Error".
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Failure)\b(?::|$)")


_MEMORY_ERRORS = ("MemoryError", "Cannot allocate memory")
_FILE_TOO_LARGE = ("File too large",)  # EFBIG: only the per-file limit makes it, in the sandbox


class LocalApiProcess:
    """``uvicorn main:app`` run from ``app_dir`` by ``python``, in its own process group,
    with exactly ``env`` as its environment; implements ``base.ApiProcess``.

    With a ``confinement`` it runs in the sandbox, cgroup and rlimits that says, and a
    watchdog kills the whole tree the moment a limit is exceeded (``limit_hit`` names it).
    """

    def __init__(
        self, python: Path, app_dir: Path, env: Mapping[str, str], port: int, *, output_limit_bytes: int = 5_000_000,
        confinement: Confinement | None = None, argv: list[str] | None = None,
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._output = BoundedOutput(output_limit_bytes)
        self._kill_lock = threading.Lock()
        self._killed = False
        self._started_at = time.time()
        command = argv or [str(python), "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)]
        self._confined: Confined | None = None
        popen_env = dict(env)
        if confinement is not None:
            self._confined = confinement.launch(f"api-{port}", command, env, app_dir)
            command, popen_env = self._confined.argv, self._confined.env
        try:
            self._proc = subprocess.Popen(
                command,
                cwd=app_dir,
                env=popen_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except BaseException:
            if self._confined is not None:
                self._confined.close()
            raise
        self._readers = [
            threading.Thread(target=self._output.pump, args=(stream, name), daemon=True, name=f"api-{name}")
            for stream, name in ((self._proc.stdout, "stdout"), (self._proc.stderr, "stderr"))
        ]
        for reader in self._readers:
            reader.start()
        if self._confined is not None:
            self._confined.watch(self._proc, self.kill)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def started_at(self) -> float:
        return self._started_at

    @property
    def exit_code(self) -> int | None:
        return exit_code_of(self._proc.poll(), self._sandboxed)

    @property
    def _sandboxed(self) -> bool:
        return self._confined is not None and self._confined.sandboxed

    @property
    def dropped_bytes(self) -> int:
        """Bytes of output not kept because the output outgrew its limit."""
        return self._output.dropped_bytes

    def output(self) -> list[LogLine]:
        return self._output.lines()

    def wait_until_serving(self, timeout: float) -> bool:
        return wait_until_answering(self.url, lambda: self.exit_code, timeout)

    def send_signal(self, signum: int) -> None:
        """Signal the uvicorn process only, as ``docker compose stop`` signals PID 1."""
        if self._sandboxed and self._proc.poll() is None:
            assert self._confined is not None
            self._confined.send_signal(signum)  # bwrap itself would not pass it on
            return
        self._proc.send_signal(signum)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return exit_code_of(self._proc.wait(timeout), self._sandboxed)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the process group and every descendant, then collect the output."""
        with self._kill_lock:
            if self._killed:
                return
            self._killed = True
            kill_tree(self._proc)
            if self._confined is not None:
                self._confined.close()  # also sweeps the cgroup: nothing escapes by reparenting
            for reader in self._readers:
                # A detached descendant that survived could still hold the pipe open.
                reader.join(timeout=2)

    def fatal_limit(self) -> str | None:
        """The sandbox limit that stopped the API (memory, processes, disk), named, or None."""
        if self._confined is None:
            return None
        if killer := self._confined.limit_hit():
            return killer
        if self._confined.cgroup is None and self._mentions(_MEMORY_ERRORS):
            limit = human_bytes(self._confined.confinement.isolation.limits.address_space_bytes)
            return f"memory limit probably hit (address space {limit})"
        if self._mentions(_FILE_TOO_LARGE):
            # The per-file limit's EFBIG, from a file in the sandbox's own /tmp, gone with it.
            limit = human_bytes(self._confined.confinement.isolation.limits.disk_bytes)
            return f"disk limit hit (a file reached {limit})"
        return None

    def limit_hit(self) -> str | None:
        """Every limit the API ran into, named (``None`` if none): the one that stopped it
        (memory, processes, disk) and the output it lost past the output limit."""
        hits = []
        if killer := self.fatal_limit():
            # The watcher kills on a hit, unless the limit made the API exit first (EFBIG).
            watched = self._confined is not None and self._confined.limit_hit() is not None
            exited_by_itself = self.exit_code is not None and self.exit_code >= 0
            hits.append(f"{killer}; killed" if watched and not exited_by_itself else killer)
        if self.dropped_bytes:
            hits.append(f"output limit hit: {self.dropped_bytes} bytes dropped")
        return "; ".join(hits) or None

    def _mentions(self, phrases: tuple[str, ...]) -> bool:
        return any(phrase in line.text for line in self.output()[-50:] for phrase in phrases)

    def startup_failure_reason(self) -> str:
        """One line on why the API stopped: the limit it hit, its exit code, the most telling line."""
        return failure_reason(self.exit_code, self.limit_hit(), self.output())


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` (a session leader), its process group, its session and every
    descendant, reaping ``proc``. Descendants are frozen first so none forks meanwhile."""
    members = _freeze_members(proc)
    # Only signal the group while it provably exists (unreaped leader or a live member):
    # otherwise its id may already belong to an unrelated process.
    if proc.returncode is None or any(_pgid(p) == proc.pid for p in members):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for member in members:
        try:
            member.kill()  # psutil refuses if the pid now names another process
        except psutil.Error:
            pass
    proc.wait()  # before psutil waits: psutil would reap the leader and hide its exit code
    psutil.wait_procs([p for p in members if p.pid != proc.pid], timeout=5)


def _freeze_members(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """Every process descending from ``proc`` or in its session, SIGSTOPped; repeats the
    search until it finds nothing new, since a member may fork before it is stopped."""
    found: dict[int, psutil.Process] = {}
    while True:
        fresh = [p for p in _members(proc) if p.pid not in found]
        if not fresh:
            return list(found.values())
        for process in fresh:
            found[process.pid] = process
            try:
                process.suspend()
            except psutil.Error:
                pass


def _members(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    leader = proc.pid
    tree: list[psutil.Process] = []
    if proc.returncode is None:  # unreaped, so the pid still names our leader
        try:
            root = psutil.Process(leader)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            pass
    elif psutil.pid_exists(leader):
        # The id was reused, which the kernel allows only once our session is empty:
        # whatever now has this session id belongs to someone else.
        return []
    # A child that called setpgid stays in the session; scanning finds it even when its
    # parent is gone. A child that called setsid is only found while its parent chain lives.
    in_session = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == leader:
                in_session.append(process)
        except OSError:
            pass
    return [*tree, *in_session]


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except OSError:
        return None


def wait_until_answering(url: str, exit_code: Callable[[], int | None], timeout: float) -> bool:
    """True once ``GET url/health`` gets any HTTP answer (even 404 or 500); False once
    ``exit_code()`` says the API ended, or when ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    # trust_env=False: a proxy from the grader's environment must not carry the grader's calls.
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while exit_code() is None:
            try:
                client.get(f"{url}/health")
                return True
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
    return False


def failure_reason(code: int | None, limit_hit: str | None, output: list[LogLine]) -> str:
    """One line on why an API is not serving: the limit it hit, its exit code, the most telling line."""
    status = "still running" if code is None else f"exited with code {code}"
    if limit_hit:
        status = f"{limit_hit}; {status}"
    telling = telling_line([line.text.strip() for line in output if line.text.strip()])
    return f"{status}: {telling}" if telling else f"{status} without output"


def telling_line(texts: list[str]) -> str:
    """The last exception line, with the last line naming JWT_SECRET_KEY if it adds to it;
    else the last line. Capped so the reason stays one readable line."""
    exception = next((t for t in reversed(texts) if _EXCEPTION_LINE.match(t)), None)
    secret = next((t for t in reversed(texts) if "jwt_secret_key" in t.lower()), None)
    if exception and secret and "jwt_secret_key" not in exception.lower():
        return f"{exception[:200]} / {secret[:200]}"
    return (exception or secret or (texts[-1] if texts else ""))[:300]


class BoundedOutput:
    """Output lines in arrival order, keeping the head and the tail past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self._half = limit // 2
        self._lock = threading.Lock()
        self._head: list[LogLine] = []
        self._head_cost = 0
        self._tail: collections.deque[tuple[LogLine, int, int]] = collections.deque()  # line, cost, raw bytes
        self._tail_cost = 0
        self.dropped_bytes = 0

    def pump(self, stream: IO[bytes], name: str) -> None:
        """Read ``stream`` to its end, one line at a time."""
        while chunk := stream.readline(_MAX_LINE_BYTES):
            skipped = 0
            if len(chunk) == _MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                while (rest := stream.readline(_MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    skipped += len(rest)
                skipped += len(rest)
            text = chunk.decode("utf-8", errors="replace").rstrip("\r\n")
            self._add(name, text, len(chunk), skipped)
        stream.close()

    def _add(self, stream: str, text: str, size: int, skipped: int) -> None:
        cost = size + _LINE_OVERHEAD_BYTES
        with self._lock:
            # Stamped under the lock so the list order and the stamps agree.
            line = LogLine(at=time.time(), stream=stream, text=text)
            self.dropped_bytes += skipped
            if not self._tail and self._head_cost + cost <= self._half:
                self._head.append(line)
                self._head_cost += cost
                return
            self._tail.append((line, cost, size))
            self._tail_cost += cost
            while self._tail_cost > self._half:
                _, old_cost, old_size = self._tail.popleft()
                self._tail_cost -= old_cost
                self.dropped_bytes += old_size

    def lines(self) -> list[LogLine]:
        with self._lock:
            return [*self._head, *(line for line, _, _ in self._tail)]
