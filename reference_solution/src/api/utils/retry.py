"""Retry of transient upstream failures with exponential backoff and jitter (exercise 4).

About 1 s, 2 s, 4 s between attempts, at most 3 retries (4 attempts). Only transient
failures are retried: connection errors, timeouts, 5xx. The whole call, retries
included, fits in a total budget (LLM_TOTAL_BUDGET_SECONDS, default 32 s: a call that hangs
for the full 30 s attempt timeout is not retried, so it answers 504 at ~31 s): each attempt
gets min(attempt timeout, remaining budget) and no attempt starts without enough budget.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Awaitable, Callable, TypeVar

import httpx
import openai

from config.logging_config import get_logger

logger = get_logger("api.retry")
T = TypeVar("T")

MAX_RETRIES = 3
BASE_DELAY_SECONDS = float(os.getenv("RETRY_BASE_DELAY_SECONDS", "1.0"))
TOTAL_BUDGET_SECONDS = float(os.getenv("LLM_TOTAL_BUDGET_SECONDS", "32"))
MIN_ATTEMPT_SECONDS = float(os.getenv("RETRY_MIN_ATTEMPT_SECONDS", "2.0"))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, TimeoutError, httpx.TransportError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500
    return False


def describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        return str(exc.status_code)
    if isinstance(exc, (openai.APITimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    return exc.__class__.__name__


def backoff_delay(retry_index: int) -> float:
    """Delay before retry number retry_index (0-based): base * 2**i, plus up to 25% jitter."""
    base = BASE_DELAY_SECONDS * (2 ** retry_index)
    return base + random.uniform(0, 0.25 * base)


async def call_with_retry(attempt: Callable[[float | None], Awaitable[T]], *, what: str = "LLM call") -> T:
    """Run `attempt(timeout)` until it succeeds, fails for good, or the budget is spent."""
    deadline = time.monotonic() + TOTAL_BUDGET_SECONDS
    for index in range(MAX_RETRIES + 1):
        remaining = deadline - time.monotonic()
        try:
            return await attempt(remaining)
        except Exception as exc:
            if not is_transient(exc):
                raise
            if index == MAX_RETRIES:
                logger.error(f"{what}: attempt {index + 1} failed ({describe(exc)}); no retries left",
                             extra={"attempt": index + 1, "upstream_error": describe(exc)})
                raise
            delay = backoff_delay(index)
            if deadline - time.monotonic() - delay < MIN_ATTEMPT_SECONDS:
                logger.error(f"{what}: attempt {index + 1} failed ({describe(exc)}); time budget spent, giving up",
                             extra={"attempt": index + 1, "upstream_error": describe(exc)})
                raise
            logger.warning(f"Attempt {index + 1} failed ({describe(exc)}). Retrying in {delay:.1f}s",
                           extra={"attempt": index + 1, "retry_delay_s": round(delay, 2), "upstream_error": describe(exc)})
            await asyncio.sleep(delay)
    raise RuntimeError("unreachable")
