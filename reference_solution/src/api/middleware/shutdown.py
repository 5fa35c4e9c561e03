"""In-flight request tracking and a bounded drain on SIGTERM (exercise 2).

uvicorn, on SIGTERM, stops listening and waits for in-flight requests WITHOUT a time
bound, and only then runs the lifespan shutdown. So the drain starts from the signal
itself: `install_signal_handlers()` (called at lifespan start-up, once uvicorn's handlers
are in place) wraps uvicorn's handler. On the signal we refuse new requests with 503, log
the in-flight count, and wait up to SHUTDOWN_DRAIN_SECONDS (default 25). At the deadline
the requests still running are cancelled and answer 503, which lets uvicorn finish and run
the cleanup. A watchdog thread covers a blocked event loop: if shutdown has not completed
a few seconds after the deadline, the process ends itself by SIGTERM (as uvicorn would).
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import json
import logging
import os
import signal
import threading
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.logging_config import get_logger

logger = get_logger("api.shutdown")

DRAIN_SECONDS = float(os.getenv("SHUTDOWN_DRAIN_SECONDS", "25"))
WATCHDOG_GRACE_SECONDS = float(os.getenv("SHUTDOWN_WATCHDOG_GRACE_SECONDS", "4"))


class _State:
    def __init__(self) -> None:
        self.active = 0
        self.draining = False
        self.aborted = False
        self.completed = threading.Event()
        self.tasks: set[asyncio.Task] = set()
        self.drain_task: asyncio.Task | None = None
        self.watchdog: threading.Timer | None = None


state = _State()


def active_requests() -> int:
    return state.active


def is_shutting_down() -> bool:
    return state.draining


async def _send_503(send: Send, message: str) -> None:
    body = json.dumps({"error": "service_unavailable", "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close"), (b"retry-after", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ShutdownMiddleware:
    """Counts in-flight HTTP requests; answers 503 while draining; aborts at the deadline."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if state.draining:
            await _send_503(send, "Server is shutting down")
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        state.active += 1
        inner = asyncio.ensure_future(self.app(scope, receive, tracked_send))
        state.tasks.add(inner)
        try:
            await asyncio.shield(inner)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if inner.cancelled() and state.aborted and not (current and current.cancelling()):
                if not started:
                    await _send_503(send, "Server shut down before the request completed")
                return
            inner.cancel()
            raise
        finally:
            state.tasks.discard(inner)
            state.active -= 1


async def _drain(timeout: float) -> None:
    """Wait for in-flight requests, up to `timeout` seconds; then cancel the rest."""
    deadline = time.monotonic() + timeout
    if state.active:
        logger.info(f"Waiting for {state.active} active request(s) (up to {timeout:.0f}s)",
                    extra={"active_requests": state.active})
    else:
        logger.info("No active requests to drain")
    while state.active and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if state.active:
        state.aborted = True
        logger.warning(f"Drain deadline reached; aborting {state.active} request(s) with 503",
                       extra={"active_requests": state.active})
        for task in list(state.tasks):
            task.cancel()
        await asyncio.sleep(0)
    else:
        logger.info("All in-flight requests completed")


def begin_drain() -> None:
    """Start draining (idempotent). Must run on the event loop."""
    if state.draining:
        return
    state.draining = True
    logger.info("Shutdown signal received: refusing new requests, draining in-flight ones")
    state.drain_task = asyncio.get_running_loop().create_task(_drain(DRAIN_SECONDS))


async def wait_for_drain() -> None:
    """Called from the lifespan shutdown: make sure the drain ran and finished."""
    begin_drain()
    if state.drain_task is not None:
        try:
            await asyncio.wait_for(asyncio.shield(state.drain_task), DRAIN_SECONDS + 1)
        except asyncio.TimeoutError:
            logger.warning("Drain did not finish in time")


def mark_completed() -> None:
    state.completed.set()
    if state.watchdog is not None:
        state.watchdog.cancel()


def _watchdog() -> None:
    """Runs in a thread when shutdown overran its deadline: end the process by SIGTERM's
    default action (what uvicorn 0.54 does after a graceful shutdown). Python only lets the
    main thread change handlers and the main thread may be stuck, so reset the disposition
    through libc (process-wide)."""
    if state.completed.is_set():
        return
    logger.error("Shutdown did not complete within the drain deadline (event loop blocked?): forcing exit")
    for handler in logging.getLogger().handlers:
        handler.flush()
    try:
        ctypes.CDLL(None).signal(int(signal.SIGTERM), 0)  # 0 == SIG_DFL
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    finally:
        os._exit(143)  # only if the signal could not end the process: the shell's code for SIGTERM


def _start_watchdog() -> None:
    if state.watchdog is None:
        state.watchdog = threading.Timer(DRAIN_SECONDS + WATCHDOG_GRACE_SECONDS, _watchdog)
        state.watchdog.daemon = True
        state.watchdog.start()


def install_signal_handlers() -> None:
    """Wrap the current SIGTERM/SIGINT handlers (uvicorn's) so a signal starts the drain."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous = signal.getsignal(sig)
        except ValueError:
            return
        if getattr(previous, "_drains", False):
            continue

        def handler(signum, frame, previous=previous):
            # a fresh context: the drain belongs to no request, whatever was running when the signal hit
            loop.call_soon_threadsafe(begin_drain, context=contextvars.Context())
            _start_watchdog()
            if callable(previous):
                previous(signum, frame)
            elif signum == signal.SIGINT:
                raise KeyboardInterrupt

        handler._drains = True  # type: ignore[attr-defined]
        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (e.g. an in-process test client)
            return
