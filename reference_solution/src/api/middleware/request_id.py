"""Request ids (exercise 6): one per request, in a contextvar and the X-Request-ID header.

The caller's X-Request-ID is echoed when it is sane; otherwise `req_` + 16 hex chars.
"""

from __future__ import annotations

import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.logging_config import get_logger
from utils.context import request_id_var

logger = get_logger("api.access")
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex[:16]}"


class RequestIDMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1").strip()
        request_id = incoming if _ACCEPTABLE.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        status = {"code": 500}
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logger.info(
                f"{scope['method']} {scope['path']} -> {status['code']}",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status_code": status["code"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            request_id_var.reset(token)
