"""The LLM stand-in: an OpenAI-compatible HTTP server that answers deterministically.

Routes: ``POST /v1/chat/completions`` and ``/chat/completions``, ``GET /v1/models`` and
``/models``, ``GET /health``. Chat completions follow a script of ``ScriptedReply`` (then a
default forever); every request is journaled on arrival. Written on asyncio + h11 rather than
an ASGI framework because hanging and resetting need the raw socket.

Model rule: a model is known when it matches ``^(groq|gpt|gemini|openrouter)-[a-z0-9-]+$``
(the exam's validation pattern) and its name contains neither ``unknown`` nor
``doesnotexist``; other models get OpenAI's 404 ``model_not_found`` naming the model.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

import h11

from grader.stack.base import JournalEntry, ScriptedReply
from grader.stack.services.rst import reset

_MODEL_PATTERN = re.compile(r"^(groq|gpt|gemini|openrouter)-[a-z0-9-]+$")
_UNKNOWN_MARKERS = ("unknown", "doesnotexist")
LISTED_MODELS = ("groq-llama-3-8b", "gpt-4o-mini", "gemini-1-5-flash", "openrouter-auto")
_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_MODELS_PATHS = frozenset({"/v1/models", "/models"})
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    409: "conflict",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_READ_SIZE = 65536
# What the grader keeps of what a submission sends: a chat request is a few kilobytes.
MAX_BODY_BYTES = 1024 * 1024
MAX_JOURNALED_BODY_BYTES = 16 * 1024
MAX_JOURNAL_ENTRIES = 10_000


def is_known_model(model: str) -> bool:
    """Whether the stand-in serves ``model`` (see the module docstring for the rule)."""
    return bool(_MODEL_PATTERN.match(model)) and not any(m in model for m in _UNKNOWN_MARKERS)


def error_body(status: int, message: str | None = None, code: str | None = None) -> dict[str, object]:
    """An OpenAI-style error body for ``status``."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return {
        "error": {
            "message": message or f"{status} {phrase} (scripted by the grader's LLM stand-in)",
            "type": _ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error"),
            "param": None,
            "code": code or str(status),
        }
    }


def _prompt_text(messages: object) -> str:
    """Every message content joined, the text the completion is derived from."""
    if not isinstance(messages, list):
        return ""
    parts = [m.get("content") for m in messages if isinstance(m, dict)]
    return "\n".join(p if isinstance(p, str) else json.dumps(p) for p in parts if p is not None)


def completion(request: dict[str, object]) -> dict[str, object]:
    """A deterministic chat completion for ``request``: same prompt, same text.

    Tokens are counted as whitespace-separated words; ``max_tokens`` truncates the answer.
    """
    prompt = _prompt_text(request.get("messages"))
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    words = f"Stand-in answer {digest[:12]} to: {prompt}".split()
    max_tokens = request.get("max_tokens")
    finish = "stop"
    if isinstance(max_tokens, int) and 0 < max_tokens < len(words):
        words, finish = words[:max_tokens], "length"
    prompt_tokens = len(prompt.split())
    return {
        "id": f"chatcmpl-{digest[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": " ".join(words)}, "finish_reason": finish}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        },
    }


class Script:
    """Scripted replies consumed one per chat completion, then a default forever."""

    def __init__(self) -> None:
        self._queue: deque[ScriptedReply] = deque()
        self._then = ScriptedReply()

    def set(self, replies: Sequence[ScriptedReply], then: ScriptedReply | None = None) -> None:
        """Replace the script."""
        self._queue = deque(replies)
        self._then = then or ScriptedReply()

    def next(self) -> ScriptedReply:
        """The reply to the next chat completion."""
        return self._queue.popleft() if self._queue else self._then


@dataclass(frozen=True)
class _Request:
    """One fully received HTTP request (``at``: ``time.time()`` when its head arrived)."""

    at: float
    method: str
    target: str
    body: bytes  # at most MAX_BODY_BYTES
    too_large: bool = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class LLMServer:
    """Serves the stand-in on asyncio streams: pass ``handle`` to ``asyncio.start_server``.

    The script and journal are plain objects owned by the event loop thread, shared with the
    control API running on the same loop.
    """

    def __init__(self, script: Script, journal: list[JournalEntry]) -> None:
        self.script = script
        self.journal = journal

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection, keep-alive included, until either side ends it."""
        conn = h11.Connection(h11.SERVER)
        try:
            while (request := await self._receive(conn, reader)) is not None:
                if not await self._answer(conn, reader, writer, request):
                    break
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (h11.ProtocolError, ConnectionError):
            pass  # a broken client: nothing useful to answer
        except asyncio.CancelledError:
            # Shutting down with the connection open: ending quietly keeps asyncio's stream
            # callback from logging the cancellation as an error.
            pass
        finally:
            writer.close()

    async def _receive(self, conn: h11.Connection, reader: asyncio.StreamReader) -> _Request | None:
        head: h11.Request | None = None
        at = 0.0
        body = bytearray()
        too_large = False
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(_READ_SIZE))
            elif isinstance(event, h11.Request):
                head, at = event, time.time()
            elif isinstance(event, h11.Data):
                # A body past the cap is read to its end (the connection stays usable) but not kept.
                too_large = too_large or len(body) + len(event.data) > MAX_BODY_BYTES
                if not too_large:
                    body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                return _Request(at, head.method.decode(), head.target.decode(), bytes(body), too_large)
            else:  # ConnectionClosed, or PAUSED after a response we did not finish
                return None

    async def _answer(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: _Request
    ) -> bool:
        """Answer ``request``; False when the connection must end (hang, reset)."""
        if request.too_large:
            self._record(request, "413")
            await _send(conn, writer, 413, error_body(413, f"Request body over {MAX_BODY_BYTES} bytes"), {})
            return False
        if request.path in _CHAT_PATHS and request.method == "POST":
            return await self._chat(conn, reader, writer, request)
        if request.path == "/health" and request.method == "GET":
            status, body = 200, {"status": "ok"}
        elif request.path in _MODELS_PATHS and request.method == "GET":
            status, body = 200, _models_list()
        else:
            status, body = 404, error_body(404, f"No route for {request.method} {request.path}", "not_found")
        self._record(request, str(status))
        await _send(conn, writer, status, body, {})
        return True

    async def _chat(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: _Request
    ) -> bool:
        reply = self.script.next()
        if reply.hang:
            self._record(request, "hang")
            # Never answer; drain until the client gives up so the connection is freed.
            while await reader.read(_READ_SIZE):
                pass
            return False
        if reply.reset:
            self._record(request, "reset")
            await asyncio.sleep(reply.delay)
            reset(writer)
            return False
        status, body, stream = self._chat_reply(reply, request)
        self._record(request, str(status))
        await asyncio.sleep(reply.delay)
        if stream:
            await _send_stream(conn, writer, body, dict(reply.headers))
        else:
            await _send(conn, writer, status, body, dict(reply.headers))
        return True

    def _chat_reply(self, reply: ScriptedReply, request: _Request) -> tuple[int, dict[str, object], bool]:
        """The status and body answering ``request``, and whether to stream them as events."""
        if reply.status != 200:
            return reply.status, dict(reply.body or error_body(reply.status)), False
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):  # RecursionError: a body nested beyond the parser's depth
            return 400, error_body(400, "The request body is not valid JSON", "invalid_json"), False
        if not isinstance(payload, dict):
            return 400, error_body(400, "The request body must be a JSON object", "invalid_json"), False
        model = payload.get("model")
        if not isinstance(model, str) or not is_known_model(model):
            message = f"The model `{model}` does not exist or you do not have access to it."
            return 404, error_body(404, message, "model_not_found"), False
        if reply.body is not None:
            return 200, dict(reply.body), False
        return 200, completion(payload), bool(payload.get("stream"))

    def _record(self, request: _Request, reply: str) -> None:
        body = request.body[:MAX_JOURNALED_BODY_BYTES].decode(errors="replace")
        self.journal.append(JournalEntry(request.at, request.method, request.target[:2048], body, reply))
        if len(self.journal) > MAX_JOURNAL_ENTRIES:  # an API calling without end keeps the latest
            del self.journal[: len(self.journal) - MAX_JOURNAL_ENTRIES]


def _models_list() -> dict[str, object]:
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "grader"} for m in LISTED_MODELS]
    return {"object": "list", "data": data}


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, status: int, body: dict[str, object], headers: dict[str, str]
) -> None:
    data = json.dumps(body).encode()
    head = [("content-type", "application/json"), ("content-length", str(len(data)))]
    writer.write(conn.send(h11.Response(status_code=status, headers=head + list(headers.items()))))
    writer.write(conn.send(h11.Data(data=data)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()


async def _send_stream(
    conn: h11.Connection, writer: asyncio.StreamWriter, answer: dict[str, object], headers: dict[str, str]
) -> None:
    """Send ``answer`` as server-sent events, the shape of ``stream=True`` completions."""
    choice = answer["choices"][0]  # type: ignore[index]
    base = {k: answer[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    chunks = [
        base | {"choices": [{"index": 0, "delta": choice["message"], "finish_reason": None}]},
        base | {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
                "usage": answer["usage"]},
    ]
    head = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
    writer.write(conn.send(h11.Response(status_code=200, headers=head + list(headers.items()))))
    for chunk in chunks:
        writer.write(conn.send(h11.Data(data=f"data: {json.dumps(chunk)}\n\n".encode())))
    writer.write(conn.send(h11.Data(data=b"data: [DONE]\n\n")))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()
