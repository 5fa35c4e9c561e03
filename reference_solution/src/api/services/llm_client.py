"""The call to the LLM proxy (exercise 3): async client, bounded timeouts, circuit breaker.

AsyncOpenAI with httpx.Timeout(30, connect=5) and max_retries=0 (retries are ours, in
utils.retry, inside a total budget). base_url is `{LITELLM_URL}/v1`, so the SDK posts to
`{LITELLM_URL}/v1/chat/completions`.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import openai

from config.settings import settings
from services.circuit_breaker import CircuitOpenError, llm_breaker
from utils import retry
from utils.errors import http_error

ATTEMPT_TIMEOUT_SECONDS = float(os.getenv("LLM_TIMEOUT_SECONDS", "30"))
CONNECT_TIMEOUT_SECONDS = 5.0

_client: openai.AsyncOpenAI | None = None


def get_client() -> openai.AsyncOpenAI:
    global _client
    if _client is None:
        _client = openai.AsyncOpenAI(
            base_url=f"{settings.LITELLM_URL}/v1",
            api_key=settings.LITELLM_API_KEY,
            timeout=httpx.Timeout(ATTEMPT_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
            max_retries=0,
        )
    return _client


def _counts_as_failure(exc: BaseException) -> bool:
    """Upstream down or broken; a 4xx means the upstream is alive and answered."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError, TimeoutError, httpx.TransportError))


async def generate(messages: list[dict], model: str, temperature: float, max_tokens: int) -> dict:
    """One logical LLM call (retries included); returns text and token usage."""

    async def attempt(remaining: float | None) -> dict:
        if not llm_breaker.allow():
            raise CircuitOpenError()
        timeout = ATTEMPT_TIMEOUT_SECONDS if remaining is None else max(0.1, min(ATTEMPT_TIMEOUT_SECONDS, remaining))
        try:
            async with asyncio.timeout(timeout + 1.0):  # total bound, even on a trickling upstream
                completion = await get_client().chat.completions.create(
                    model=model,
                    messages=messages,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT_SECONDS, timeout)),
                )
        except BaseException as exc:
            if _counts_as_failure(exc):
                llm_breaker.record_failure()
            elif isinstance(exc, Exception):
                llm_breaker.record_success()
            else:  # cancelled: release a half-open probe without judging the upstream
                llm_breaker._probe_in_flight = False
            raise
        llm_breaker.record_success()
        usage = completion.usage
        return {
            "text": completion.choices[0].message.content or "",
            "model": completion.model or model,
            "prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
            "completion_tokens": getattr(usage, "completion_tokens", 0) or 0,
            "total_tokens": getattr(usage, "total_tokens", 0) or 0,
        }

    try:
        return await retry.call_with_retry(attempt)
    except CircuitOpenError:
        snap = llm_breaker.snapshot()
        raise http_error(503, "circuit_open", "The LLM provider is failing; circuit breaker open, retry later",
                         headers={"Retry-After": str(int((snap["retry_in_seconds"] or 0) + 1))}, breaker=snap["state"])
    except (openai.APITimeoutError, TimeoutError):
        raise http_error(504, "upstream_timeout", "The LLM provider did not answer in time", model=model)
