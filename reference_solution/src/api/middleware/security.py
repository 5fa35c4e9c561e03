"""The handout's security middleware: proxy headers refused, 60 requests/minute per IP."""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque

from starlette.types import ASGIApp, Receive, Scope, Send

RATE_LIMIT_PER_MINUTE = 60
PROXY_HEADERS = {b"x-forwarded-for", b"x-real-ip", b"via", b"forwarded", b"x-forwarded-host", b"x-client-ip"}
EXEMPT_PATHS = {"/health", "/health/detailed", "/system/health"}


async def _reject(send: Send, status: int, error: str, message: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"error": error, "message": message}).encode()})


class SecurityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.hits: dict[str, deque] = defaultdict(deque)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if any(name in PROXY_HEADERS for name, _ in scope["headers"]):
            await _reject(send, 400, "proxy_headers_refused", "Proxy headers are not accepted")
            return
        if scope["path"] not in EXEMPT_PATHS and scope["method"] != "OPTIONS":
            client = (scope.get("client") or ("unknown", 0))[0]
            now = time.monotonic()
            window = self.hits[client]
            while window and now - window[0] > 60:
                window.popleft()
            if len(window) >= RATE_LIMIT_PER_MINUTE:
                await _reject(send, 429, "rate_limited", "Too many requests: 60 per minute per client")
                return
            window.append(now)
        await self.app(scope, receive, send)
