"""Readiness checks of the dependencies (exercise 5).

Qdrant, LiteLLM and MLflow are required, TEI is reported only. The checks run
concurrently, each bounded by CHECK_TIMEOUT_SECONDS, and the result is cached for
HEALTH_CACHE_SECONDS so a busy load balancer does not hammer the dependencies. A
dependency is healthy when it answers HTTP without a 5xx.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx

from config.logging_config import get_logger
from config.settings import settings

logger = get_logger("api.health")

CHECK_TIMEOUT_SECONDS = float(os.getenv("HEALTH_CHECK_TIMEOUT_SECONDS", "2"))
CACHE_SECONDS = float(os.getenv("HEALTH_CACHE_SECONDS", "5"))
REQUIRED = ("qdrant", "litellm", "mlflow")


def _targets() -> dict[str, tuple[str, dict]]:
    return {
        "qdrant": (f"{settings.QDRANT_URL}/healthz", {}),
        "litellm": (f"{settings.LITELLM_URL}/models", {"Authorization": f"Bearer {settings.LITELLM_API_KEY}"}),
        "mlflow": (f"{settings.MLFLOW_TRACKING_URI}/health", {}),
        "tei": (f"{settings.TEI_URL}/health", {}),
    }


async def _check(client: httpx.AsyncClient, name: str, url: str, headers: dict) -> dict:
    started = time.perf_counter()
    try:
        response = await client.get(url, headers=headers)
        healthy = response.status_code < 500
        result = {"healthy": healthy, "status_code": response.status_code}
    except Exception as exc:
        result = {"healthy": False, "error": f"{exc.__class__.__name__}: {exc}"[:200]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    result["required"] = name in REQUIRED
    return result


class HealthChecker:
    def __init__(self) -> None:
        self._cached: tuple[float, dict] | None = None
        self._lock = asyncio.Lock()

    async def check_all(self) -> dict:
        async with self._lock:
            now = time.monotonic()
            if self._cached and now - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
            timeout = httpx.Timeout(CHECK_TIMEOUT_SECONDS)
            async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
                names = list(_targets())
                results = await asyncio.gather(*(_check(client, n, *_targets()[n]) for n in names))
            checks = dict(zip(names, results))
            down = [n for n in REQUIRED if not checks[n]["healthy"]]
            if down:
                logger.warning(f"Readiness degraded: {', '.join(down)} down", extra={"down": down})
            report = {"healthy": not down, "down": down, "checks": checks}
            self._cached = (time.monotonic(), report)
            return report


health_checker = HealthChecker()
