"""The grader's handle on a fork server of stand-in sets (``grader.stack.services.forkserver``).

``ServicesHost.start(folder)`` spawns the server once per grading; ``spawn()`` gives each stack a
fresh set of stand-ins in a process of its own, with the same surface as a ``ServicesProcess``
(``llm``, ``url()``, ``close()``), at the cost of a fork instead of a Python start-up.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from grader.errors import StackError
from grader.stack.base import Service
from grader.stack.services.control import LLMControl

_SOCKET_NAME = "stand-ins.sock"
_LOG_NAME = "stand-ins.log"  # a file, not a pipe: nobody has to keep draining it
_GONE_WITHIN_S = 10.0  # a SIGKILLed set is gone in milliseconds; this bounds a stuck kernel, not the norm


class ForkedServices:
    """One stack's set of stand-ins, forked by the host; ``close()`` ends its process group."""

    def __init__(self, conn: socket.socket, ready: dict[str, object], token: str) -> None:
        self._conn = conn
        self.pid = int(ready["pid"])  # type: ignore[arg-type]
        self.llm_url = str(ready["llm_url"])
        self.control_url = str(ready["control_url"])
        self.qdrant_url = str(ready["qdrant_url"])
        self.tei_url = str(ready["tei_url"])
        self.llm = LLMControl(self.control_url, token)

    def url(self, service: Service) -> str:
        """The base URL serving ``service`` (MLflow is not served here: KeyError)."""
        urls = {Service.LLM: self.llm_url, Service.QDRANT: self.qdrant_url, Service.TEI: self.tei_url}
        return urls[service]

    def close(self) -> None:
        """Hang up (the set stops by itself), kill its group and return once it is gone; idempotent."""
        self.llm.close()
        self._conn.close()
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        # Not our child (the host's, reaped by the kernel), so no waitpid: psutil polls until the
        # process is gone, so that nothing of a closed stack outlives close() even on a loaded machine.
        try:
            psutil.Process(self.pid).wait(timeout=_GONE_WITHIN_S)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            pass

    def __enter__(self) -> "ForkedServices":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ServicesHost:
    """The fork server of one grading; closing it stops the server (sets stop with it)."""

    def __init__(self, popen: subprocess.Popen[bytes], path: Path) -> None:
        self._popen = popen
        self._path = path

    @classmethod
    def start(cls, folder: Path, timeout: float = 60.0) -> "ServicesHost":
        """Spawn the server listening in ``folder``; ``StackError`` if it is not ready in time."""
        folder.mkdir(parents=True, exist_ok=True)
        # A Unix socket's path is limited to 107 bytes: a short folder of its own, not ``folder``.
        path, log = Path(tempfile.mkdtemp(prefix="stand-ins-")) / _SOCKET_NAME, folder / _LOG_NAME
        with log.open("wb") as output:
            popen = subprocess.Popen(
                [sys.executable, "-m", "grader.stack.services.forkserver", str(path)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
            )  # fmt: skip
        host = cls(popen, path)
        deadline = time.monotonic() + timeout
        while b'"ready": true' not in log.read_bytes()[:4096]:
            if popen.poll() is not None or time.monotonic() > deadline:
                host.close()
                what = (f"exited with code {popen.returncode}" if popen.returncode is not None
                        else f"was not ready within {timeout:g} s")
                tail = log.read_bytes()[-2000:].decode("utf-8", errors="replace").strip()
                raise StackError(f"the stand-ins' fork server {what}: {tail or 'no output'}")
            time.sleep(0.05)
        return host

    def spawn(self, timeout: float = 60.0) -> ForkedServices:
        """A fresh set of stand-ins, listening; ``StackError`` if it cannot be had in time."""
        token = secrets.token_urlsafe(24)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(timeout)
            conn.connect(str(self._path))
            conn.sendall((json.dumps({"token": token}) + "\n").encode())
            line = conn.makefile("r", encoding="utf-8").readline()
            ready = json.loads(line) if line else {"ready": False, "error": "the fork server hung up"}
        except (OSError, ValueError) as exc:
            conn.close()
            raise StackError(f"no set of stand-ins from the fork server: {exc}") from None
        if not ready.get("ready"):
            conn.close()
            raise StackError(f"a set of stand-ins failed to start: {str(ready.get('error', '')).strip()[-500:]}")
        conn.settimeout(None)
        return ForkedServices(conn, ready, token)

    def close(self) -> None:
        """Stop the server; idempotent."""
        if self._popen.poll() is None:
            try:
                os.killpg(self._popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._popen.wait()
        shutil.rmtree(self._path.parent, ignore_errors=True)
