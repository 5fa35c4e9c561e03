"""Start-up and graceful shutdown (exercise 2).

Start-up never blocks on a dependency: MLflow and Qdrant are set up in the background.
Shutdown: finish the drain, then close Qdrant, end the MLflow run, flush the cache,
each step bounded and logged.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cache.exact_cache import response_cache
from config.logging_config import get_logger
from middleware import shutdown
from services import tracing

logger = get_logger("api.lifespan")
CLEANUP_STEP_SECONDS = 4.0


@asynccontextmanager
async def lifespan(app: FastAPI):
    shutdown.install_signal_handlers()
    tracing.start()
    response_cache.start()
    logger.info("API started")
    try:
        yield
    finally:
        await shutdown.wait_for_drain()
        logger.info("Starting cleanup")
        await _step("Cache flushed", response_cache.flush)
        await _step("Qdrant client closed", response_cache.close)
        await _step("MLflow run ended", tracing.end_run)
        logger.info("Graceful shutdown completed")
        shutdown.mark_completed()


async def _step(done_message: str, action) -> None:
    try:
        detail = await asyncio.wait_for(action(), CLEANUP_STEP_SECONDS)
        logger.info(done_message if not detail else f"{done_message} ({detail})")
    except Exception as exc:  # a cleanup step must not prevent the others
        logger.error(f"Cleanup step failed: {done_message.lower()}: {exc!r}")
