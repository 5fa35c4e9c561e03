"""Readiness endpoints (exercise 5). Liveness (`/health`) lives in config/app.py."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse

from services import circuit_breaker
from services.health_checker import health_checker

router = APIRouter(tags=["health"])


@router.get("/health/detailed")
async def readiness() -> JSONResponse:
    report = await health_checker.check_all()
    body = {
        "status": "healthy" if report["healthy"] else "degraded",
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "checks": report["checks"],
        "down": report["down"],
        "circuit_breaker": circuit_breaker.snapshot(),
    }
    return JSONResponse(body, status_code=200 if report["healthy"] else 503)


@router.get("/system/health", include_in_schema=False)
async def legacy_health() -> RedirectResponse:
    """The old always-healthy check now points at the real readiness check."""
    return RedirectResponse("/health/detailed", status_code=307)
