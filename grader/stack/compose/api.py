"""The submission's API as a container of a compose project; implements ``base.ApiProcess``.

The grader reaches it at its address on the project's internal network (the host is on
every Docker bridge), so nothing is published. Output is followed through the engine's log
stream, one reader per stream, and bounded as for a local process.
"""

from __future__ import annotations

import io
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from grader.sandbox.cgroup import forks_refused, process_limit_hit
from grader.sandbox.limits import Limits, human_bytes
from grader.stack.base import LogLine
from grader.stack.process import BoundedOutput, failure_reason, wait_until_answering

API_PORT = 8000
# Where an engine on this machine keeps a container's pids cgroup: cgroup v1 or v2, with the
# cgroupfs or the systemd driver. An engine elsewhere (remote, rootless) leaves none readable here.
_PIDS_CGROUP_DIRS = ("/sys/fs/cgroup/pids/docker/{id}", "/sys/fs/cgroup/pids/system.slice/docker-{id}.scope",
                     "/sys/fs/cgroup/docker/{id}", "/sys/fs/cgroup/system.slice/docker-{id}.scope")


class _ChunkReader(io.RawIOBase):
    """A byte stream over the engine's log chunks, so ``BoundedOutput.pump`` reads it by line."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


class ContainerApi:
    """One ``api`` container (started by ``docker compose run``), followed until it ends."""

    def __init__(self, container, network: str, limits: Limits,
                 full_folders: Callable[[], list[str]] = lambda: []) -> None:
        """``full_folders``: the API's writable folders whose file system is full (its disk limit)."""
        self._container = container
        self._limits = limits
        self._full_folders = full_folders
        self._disk_hit: str | None = None
        self._output = BoundedOutput(limits.output_bytes)
        self._forks_refused = False
        self._exit_code: int | None = None
        self._kill_lock = threading.Lock()
        self._killed = False
        container.reload()
        # A container that already exited (a refusal to start) has no address any more: its
        # URL is never called, since ``exit_code`` is set.
        endpoint = container.attrs["NetworkSettings"]["Networks"].get(network) or {}
        self.url = f"http://{endpoint.get('IPAddress') or 'exited.invalid'}:{API_PORT}"
        self._started_at = _epoch(container.attrs["State"]["StartedAt"])
        self._readers = [
            threading.Thread(target=self._follow, args=(name,), daemon=True, name=f"{container.name}-{name}")
            for name in ("stdout", "stderr")
        ]
        for reader in self._readers:
            reader.start()

    def _follow(self, stream: str) -> None:
        chunks = self._container.logs(stream=True, follow=True, stdout=stream == "stdout", stderr=stream == "stderr")
        self._output.pump(io.BufferedReader(_ChunkReader(iter(chunks))), stream)

    @property
    def name(self) -> str:
        return str(self._container.name)

    @property
    def started_at(self) -> float:
        """When the engine started the container (not when the CLI was called)."""
        return self._started_at

    @property
    def exit_code(self) -> int | None:
        """The container's exit status (a signal ``s`` shows as ``128 + s`` through docker-init)."""
        if self._exit_code is None:
            self._container.reload()
            state = self._container.attrs["State"]
            if state["Status"] in ("exited", "dead"):
                # The log streams end with the container: once read to their end, the output
                # is whole, so whoever sees the exit also sees every line written before it.
                for reader in self._readers:
                    reader.join(timeout=10)
                self._exit_code = int(state["ExitCode"])
        return self._exit_code

    @property
    def dropped_bytes(self) -> int:
        return self._output.dropped_bytes

    def output(self) -> list[LogLine]:
        return self._output.lines()

    def wait_until_serving(self, timeout: float) -> bool:
        return wait_until_answering(self.url, lambda: self.exit_code, timeout)

    def send_signal(self, signum: int) -> None:
        """What ``docker compose stop`` sends first; docker-init passes it to uvicorn."""
        if self.exit_code is None:
            self._container.kill(signal=signal.Signals(signum).name)

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while (code := self.exit_code) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return code

    def kill(self) -> None:
        """SIGKILL the container (every process in it), keep its output, remove it."""
        with self._kill_lock:
            if self._killed:
                return
            self._killed = True
            if self.exit_code is None:
                self._note_forks_refused()  # the container's cgroup goes with it
                try:
                    self._container.kill()
                except Exception:  # it ended on its own meanwhile: what kill wanted
                    pass
                self.wait_exit(10)
            for reader in self._readers:
                reader.join(timeout=5)
            self._container.remove(force=True)

    def _note_forks_refused(self) -> bool:
        """Whether the kernel has refused the container a fork (its pids limit), as far as the
        engine's cgroup files on this machine tell; remembered, since they go with the container."""
        if not self._forks_refused:
            dirs = [Path(pattern.format(id=self._container.id)) for pattern in _PIDS_CGROUP_DIRS]
            self._forks_refused = any(forks_refused(path) for path in dirs if path.is_dir())
        return self._forks_refused

    def fatal_limit(self) -> str | None:
        """The memory limit when the engine's OOM killer ended it, the process limit when a fork
        was refused, the disk limit when it ended with a writable folder full."""
        hits = []
        if self.exit_code is not None and self._container.attrs["State"].get("OOMKilled"):
            hits.append(f"memory limit hit ({human_bytes(self._limits.memory_bytes)}); killed")
        if self._note_forks_refused():
            hits.append(process_limit_hit(self._limits.processes))
        if disk := self._note_disk_full():
            hits.append(disk)
        return "; ".join(hits) or None

    def _note_disk_full(self) -> str | None:
        """Once the API has ended: whether a folder it writes to is full (asked once, remembered)."""
        if self._disk_hit is None and self.exit_code is not None:
            full = self._full_folders()
            self._disk_hit = (f"disk limit hit ({human_bytes(self._limits.disk_bytes)}: {', '.join(full)} full)"
                              if full else "")
        return self._disk_hit or None

    def limit_hit(self) -> str | None:
        """The limits of ``fatal_limit``, and the output past its limit."""
        hits = [hit for hit in (self.fatal_limit(),) if hit]
        if self.dropped_bytes:
            hits.append(f"output limit hit: {self.dropped_bytes} bytes dropped")
        return "; ".join(hits) or None

    def startup_failure_reason(self) -> str:
        """One line on why the API stopped: the limit it hit, its exit code, the most telling line."""
        return failure_reason(self.exit_code, self.limit_hit(), self.output())


def _epoch(stamp: str) -> float:
    """Docker's RFC 3339 time with nanoseconds (``2026-11-26T20:00:00.123456789Z``) as epoch seconds."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    return seconds + float(f"0.{fraction or 0}")
