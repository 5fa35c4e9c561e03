"""A cap on the request bodies a stand-in takes from a submission (ASGI middleware).

The stand-ins buffer a request before they parse it: an API that sends a body without end
would fill the stack phase's memory. The body is read here first, up to the cap, and handed
to the stand-in only when it fits; past the cap the answer is 413 and nothing more is kept.
The rest of the body is read and dropped first, up to a bound, so that the client reads the 413:
a connection closed on unread bytes is reset, and the answer lost with it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
_DRAINED_BYTES = 16 * MAX_BODY_BYTES  # read and dropped after a 413; a body without end is cut there


class BodyLimit:
    """Wraps ``app``: a request whose body (declared or streamed) passes ``limit`` gets 413."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            await _refuse(receive, send, self.limit, 0)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _refuse(receive if more else None, send, self.limit, len(body))
                return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then whatever the server sends next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(receive: Receive | None, send: Send, limit: int, read: int) -> None:
    """Drop what is left of the body (``receive``: None when it was read whole), then answer 413.

    Dropped first: once the answer is complete the server hands out no more of the body.
    """
    while receive is not None and read < _DRAINED_BYTES:
        message = await receive()
        if message["type"] != "http.request":  # the client left: nothing to answer
            return
        if not message.get("more_body", False):
            break
        read += len(message.get("body", b""))
    body = f'{{"status": {{"error": "request body over {limit} bytes"}}}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
