"""The real MLflow tracking server, started once per grading run and shared by scenarios.

It runs from the grader's own environment on a SQLite store in ``workdir``, with one
worker, no background job runner and no telemetry, so it needs no network.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from grader.errors import StackError
from grader.stack.ports import free_port
from grader.stack.process import kill_tree

# Its environment is built, not inherited: the grader's MLFLOW_* settings must not leak in.
_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    # The job runner forks a pool of huey consumers the grader has no use for.
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "LANG": "C.UTF-8",
}
_PORT_ATTEMPTS = 3
# Its imports and database set-up take a few seconds on an idle machine, and were seen to take
# over 60 s beside two gradings on two cores: a slow start is the machine's load, not a failure.
STARTUP_TIMEOUT_S = 180.0
_STOP_GRACE_S = 5.0
# No file MLflow writes for a submission (an artifact, its database) grows past this; a write
# beyond fails (EFBIG: the upload is refused) instead of filling the machine's disk.
MAX_FILE_BYTES = 256 * 1024 * 1024
# All it stores, when the grading has a mount namespace of its own (the stack phase's): its
# folder is then a tmpfs of this size, and a write past it fails with ENOSPC.
MAX_STORE_BYTES = 512 * 1024 * 1024


def _bound_file_size() -> None:
    """In MLflow's process before it runs: the per-file limit, and EFBIG instead of SIGXFSZ
    (which would kill the server every scenario shares)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))


class MlflowServer:
    """Context manager: ``mlflow server`` serving on ``.url`` inside, gone with every child
    after. Start-up failure raises ``StackError`` quoting the server's last output lines."""

    def __init__(self, workdir: Path, *, startup_timeout: float = STARTUP_TIMEOUT_S,
                 own_mount_namespace: bool = False) -> None:
        """``own_mount_namespace``: the caller runs in a mount namespace of its own (the stack
        phase's), where the store may be a sized tmpfs that dies with it."""
        self.workdir = workdir
        self._sized_store = own_mount_namespace
        self._mounted = False
        self.startup_timeout = startup_timeout
        self.port = 0
        self.url = ""
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = workdir / "mlflow-server.log"

    def __enter__(self) -> MlflowServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            if self._sized_store:
                self._mount_store()
            for _ in range(_PORT_ATTEMPTS):
                if self._start_on(free_port()):
                    return self
            raise StackError(f"MLflow server found no free port in {_PORT_ATTEMPTS} attempts: {self._tail()}")
        except BaseException:
            self._stop()
            self._unmount_store()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self._stop()
        self._unmount_store()

    def _mount_store(self) -> None:
        """A tmpfs of ``MAX_STORE_BYTES`` on the workdir: everything MLflow stores, bounded."""
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MAX_STORE_BYTES},mode=0700", "mlflow-store",
                               str(self.workdir)], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise StackError(f"MLflow's store could not be sized: {done.stderr.strip() or done.returncode}")
        self._mounted = True

    def _start_on(self, port: int) -> bool:
        """Start on ``port`` and wait for ``/health``; False if another process took the port."""
        self._stop()
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.workdir.resolve()}/mlflow.db",
            "--default-artifact-root", str(self.workdir.resolve() / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir.resolve()), **_ENV}
        started = time.monotonic()
        # Output goes to a file: nothing to drain, and it stays as evidence of the run.
        with open(self._log_path, "ab") as log:
            self._proc = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_bound_file_size,
            )  # fmt: skip
        if self._wait_healthy(started + self.startup_timeout):
            self.startup_seconds = round(time.monotonic() - started, 2)
            return True
        if self._proc.poll() is not None and "address already in use" in self._tail().lower():
            return False
        raise StackError(f"MLflow server did not answer /health within {self.startup_timeout:.0f} s: {self._tail()}")

    def _wait_healthy(self, deadline: float) -> bool:
        assert self._proc is not None
        # trust_env=False: a proxy from the grader's environment must not carry loopback calls.
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while self._proc.poll() is None and time.monotonic() < deadline:
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
        return False

    def _stop(self) -> None:
        """SIGTERM the group for a clean SQLite close, then SIGKILL whatever is left."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self._proc.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        kill_tree(self._proc)
        self._proc = None

    def _unmount_store(self) -> None:
        if self._mounted:
            subprocess.run(["umount", "-l", str(self.workdir)], capture_output=True, timeout=30)
            self._mounted = False

    def _tail(self, lines: int = 5) -> str:
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "no output"
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip()) or "no output"
