"""Request body size limit (exercise 3): 413 past MAX_BODY_BYTES (1 MB).

Declared Content-Length is checked before reading anything; bodies without one
(chunked) are counted while they stream and refused as soon as the limit is passed.
"""

from __future__ import annotations

import json
import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.logging_config import get_logger

logger = get_logger("api.request_limits")
MAX_BODY_BYTES = int(os.getenv("MAX_BODY_BYTES", str(1024 * 1024)))


class BodyTooLarge(Exception):
    pass


async def _send_413(send: Send) -> None:
    body = json.dumps({"error": "payload_too_large",
                       "message": f"Request body exceeds {MAX_BODY_BYTES} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            logger.warning("Request body too large (declared)", extra={"content_length": int(declared)})
            await _send_413(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if received > MAX_BODY_BYTES:
                # The app answered the aborted read (FastAPI turns it into a 400): answer 413 instead.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    logger.warning("Request body too large (streamed)", extra={"bytes_received": received})
                    await _send_413(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracked_send)
        except Exception as exc:
            if received > MAX_BODY_BYTES and not started:
                logger.warning("Request body too large (streamed)", extra={"bytes_received": received})
                await _send_413(send)
                return
            raise
