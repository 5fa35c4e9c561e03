"""HTTP probes that never raise: every call returns what was observed, as evidence."""

from __future__ import annotations

import json
import random
import select
import socket
import string
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import httpx

from grader import contract
from grader.models import Evidence

_BODY_EXCERPT = 600
# What a probe keeps of a response body: read while it streams, the rest never read, so an
# endless or huge answer costs the grader this much memory and no more.
MAX_BODY_BYTES = 64 * 1024
# What the upload probe reads of an answer while looking for its status line.
_MAX_STATUS_BYTES = 8 * 1024


@dataclass(frozen=True)
class Observed:
    """One request and what came back (``status`` None when no HTTP answer came)."""

    method: str
    path: str
    status: int | None
    elapsed_s: float
    text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except (ValueError, RecursionError):  # RecursionError: nested beyond the parser's depth
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def summary(self) -> str:
        outcome = f"{self.status}" if self.status is not None else f"no answer ({self.error})"
        return f"{self.method} {self.path} -> {outcome} in {self.elapsed_s:.2f}s"

    def evidence(self) -> Evidence:
        return Evidence(kind="request", summary=self.summary(), detail=self.text[:_BODY_EXCERPT])


class Probe:
    """A client of one running API; ``trust_env=False`` so no proxy of the grader's applies."""

    def __init__(self, base_url: str, check_time: Callable[[], None] = lambda: None) -> None:
        """``check_time`` runs before each request: it raises once the scenario run is out of time."""
        self.base_url = base_url
        self._check_time = check_time
        self._client = httpx.Client(base_url=base_url, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Observed:
        self._check_time()
        started = time.monotonic()
        try:
            request = self._client.build_request(method, path, json=json_body, headers=dict(headers or {}),
                                                 timeout=timeout)
            response = self._client.send(request, stream=True)
            try:
                body = _read_capped(response, started + timeout)
            finally:
                response.close()
        except httpx.TimeoutException:
            return Observed(method, path, None, time.monotonic() - started, error=f"no answer within {timeout:.0f}s")
        except httpx.HTTPError as exc:
            return Observed(method, path, None, time.monotonic() - started, error=type(exc).__name__)
        return Observed(
            method,
            path,
            response.status_code,
            time.monotonic() - started,
            text=body.decode(response.encoding or "utf-8", errors="replace"),
            headers={k.lower(): v for k, v in list(response.headers.items())[:200]},
        )

    def login(self) -> tuple[str | None, Observed]:
        """A bearer token for the admin user (the handout's default credentials)."""
        observed = self.call(
            "POST",
            contract.LOGIN_PATH,
            json_body={"username": contract.ADMIN_USER, "password": contract.ADMIN_PASSWORD},
        )
        body = observed.json
        token = body.get("access_token") if observed.status == 200 and isinstance(body, dict) else None
        return token, observed

    def generate(
        self,
        token: str | None,
        *,
        prompt: str | None = None,
        model: str = contract.MODEL,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
    ) -> Observed:
        """One ``/llm/generate`` call with a prompt never sent before (the answer cache misses)."""
        all_headers = {"Authorization": f"Bearer {token}"} if token else {}
        all_headers.update(headers or {})
        body = {
            "prompt": prompt or unique_prompt(),
            "model": model,
            "temperature": 0.2,
            "max_tokens": 64,
        }
        return self.call("POST", contract.GENERATE_PATH, json_body=body, headers=all_headers, timeout=timeout)


def _read_capped(response: httpx.Response, deadline: float) -> bytes:
    """The body's first ``MAX_BODY_BYTES``, read as it streams; a body still streaming at
    ``deadline`` (``time.monotonic()``) is cut there: an answer without end is not waited out."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= MAX_BODY_BYTES or time.monotonic() >= deadline:
            break
    return bytes(body[:MAX_BODY_BYTES])


def unique_prompt() -> str:
    """Plain prose (the handout's validator rejects code-like prompts), unique per call."""
    word = "".join(random.choices(string.ascii_lowercase, k=10))
    return f"Please write a short friendly greeting for a visitor called {word}"


def send_oversized(base_url: str, path: str, size: int, *, chunked: bool, headers: Mapping[str, str],
                   timeout: float = 30.0) -> tuple[int | None, str]:
    """POST ``size`` bytes and return the status the server answered, read as soon as it comes.

    A server may answer 413 and close while the client is still uploading: the status is
    read before the upload finishes, and a reset right after the answer is accepted.
    Raw sockets because HTTP clients report the reset and lose the early answer.
    """
    parts = urlsplit(base_url)
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}", "Content-Type: application/json",
            "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    request_head = ("\r\n".join(head) + "\r\n\r\n").encode()
    piece = b'{"prompt": "' + b"a" * 65_000
    deadline = time.monotonic() + timeout
    received = b""
    sent = 0
    note = ""
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(request_head)
            while sent < size and time.monotonic() < deadline:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                chunk = piece[: min(len(piece), size - sent)]
                data = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk
                try:
                    sock.sendall(data)
                except OSError as exc:
                    note = f"upload stopped by the server after {sent} bytes ({type(exc).__name__})"
                    break
                sent += len(chunk)
            else:
                if chunked and sent >= size:
                    sock.sendall(b"0\r\n\r\n")
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                while b"\r\n" not in received and len(received) < _MAX_STATUS_BYTES:
                    data = sock.recv(4096)
                    if not data:
                        break
                    received += data
            except OSError as exc:
                note = note or f"connection ended ({type(exc).__name__})"
    except OSError as exc:
        return None, f"could not connect ({type(exc).__name__})"
    status_line = received.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split()
    if len(fields) >= 2 and fields[1].isdigit():
        return int(fields[1]), f"{status_line} after {sent} of {size} bytes sent {note}".strip()
    return None, note or f"no HTTP answer after {sent} of {size} bytes sent"
