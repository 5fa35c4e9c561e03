"""The grader's handle on one services process (``python -m grader.stack.services``).

``ServicesProcess.start()`` spawns it in its own process group, waits for its ready line and
exposes the URLs and the LLM stand-in's client; ``close()`` ends the whole group.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from typing import IO

from grader.errors import StackError
from grader.stack.base import Service
from grader.stack.services.control import LLMControl

_KEPT_LINES = 50
_TERM_GRACE = 3.0


class ServicesProcess:
    """The LLM stand-in, its control API, Qdrant and the TEI stand-in of one stack."""

    def __init__(self, popen: subprocess.Popen[str], ready: dict[str, object], token: str, lines: collections.deque[str]) -> None:
        self._popen = popen
        self._lines = lines
        self.pid = popen.pid
        self.llm_url = str(ready["llm_url"])
        self.control_url = str(ready["control_url"])
        self.qdrant_url = str(ready["qdrant_url"])
        self.tei_url = str(ready["tei_url"])
        self.llm = LLMControl(self.control_url, token)

    @classmethod
    def start(cls, timeout: float = 10.0) -> ServicesProcess:
        """Spawn the process and wait until every service listens.

        Raises ``StackError`` with the last lines it wrote if it exits or is not ready in time.
        """
        token = secrets.token_urlsafe(24)
        popen = subprocess.Popen(
            [sys.executable, "-m", "grader.stack.services", f"--token={token}"],  # "=": a token may begin with "-"
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, killed whole by close()
        )
        lines: collections.deque[str] = collections.deque(maxlen=_KEPT_LINES)
        ready: queue.Queue[dict[str, object] | None] = queue.Queue()
        assert popen.stdout is not None
        threading.Thread(target=_pump, args=(popen.stdout, lines, ready), daemon=True).start()
        try:
            announced = ready.get(timeout=timeout)
        except queue.Empty:
            announced = None
        if announced is None:
            code = popen.poll()
            _terminate(popen)
            tail = " | ".join(list(lines)[-10:]) or "no output"
            what = f"exited with code {code}" if code is not None else f"was not ready within {timeout:g} s"
            raise StackError(f"the services process {what}: {tail}")
        return cls(popen, announced, token, lines)

    def url(self, service: Service) -> str:
        """The base URL serving ``service`` (MLflow is not served here: KeyError)."""
        urls = {Service.LLM: self.llm_url, Service.QDRANT: self.qdrant_url, Service.TEI: self.tei_url}
        return urls[service]

    def output(self) -> list[str]:
        """The last lines the process wrote (stdout and stderr)."""
        return list(self._lines)

    def close(self) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after a grace period); idempotent."""
        self.llm.close()
        _terminate(self._popen)

    def __enter__(self) -> ServicesProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _pump(stream: IO[str], lines: collections.deque[str], ready: queue.Queue[dict[str, object] | None]) -> None:
    """Keep the last lines of ``stream``; hand over the ready line, or None at end of file.

    Draining until the end also keeps the pipe from filling up and blocking the process.
    """
    waiting = True
    with stream:
        for line in stream:
            lines.append(line.rstrip("\n"))
            if waiting and line.startswith("{"):
                try:
                    announced = json.loads(line)
                except ValueError:
                    continue
                if isinstance(announced, dict) and announced.get("ready") is True:
                    ready.put(announced)
                    waiting = False
    if waiting:
        ready.put(None)


def _terminate(popen: subprocess.Popen[str]) -> None:
    if popen.poll() is None:
        _signal_group(popen.pid, signal.SIGTERM)
        try:
            popen.wait(_TERM_GRACE)
        except subprocess.TimeoutExpired:
            pass
    # The leader may be gone while something it started lives on in the group.
    _signal_group(popen.pid, signal.SIGKILL)
    popen.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass  # the whole group has already ended
