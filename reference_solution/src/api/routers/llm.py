"""LLM endpoints: generate (cached, traced) and the model list."""

from __future__ import annotations

import time

import httpx
from fastapi import APIRouter, Depends, HTTPException

from cache.exact_cache import cache_key, response_cache
from config.logging_config import get_logger
from config.settings import settings
from models.schemas import GenerateRequest
from services import llm_client, tracing
from services.auth import get_current_user
from utils.context import current_request_id
from utils.errors import http_error, map_upstream_error
from utils.prompt_validator import validate_prompt

router = APIRouter(prefix="/llm", tags=["llm"])
logger = get_logger("api.llm")

COST_PER_1K_TOKENS = 0.0005


@router.post("/generate")
async def generate(body: GenerateRequest, user: dict = Depends(get_current_user)) -> dict:
    validate_prompt(body.prompt)
    key = cache_key(body.prompt, body.model, body.temperature, body.max_tokens, body.system_prompt)
    cached = await response_cache.get(key)
    if cached:
        logger.info("Cache hit", extra={"model": body.model})
        return {**cached, "cached": True}

    messages = ([{"role": "system", "content": body.system_prompt}] if body.system_prompt else []) + [
        {"role": "user", "content": body.prompt}
    ]
    logger.info("Calling the LLM", extra={"model": body.model, "username": user["username"]})
    started = time.perf_counter()
    try:
        result = await llm_client.generate(messages, body.model, body.temperature, body.max_tokens)
    except HTTPException:
        raise
    except Exception as exc:
        raise map_upstream_error(exc, model=body.model)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    answer = {
        "response": result["text"],
        "model": result["model"],
        "prompt_tokens": result["prompt_tokens"],
        "completion_tokens": result["completion_tokens"],
        "total_tokens": result["total_tokens"],
        "cost": round(result["total_tokens"] / 1000 * COST_PER_1K_TOKENS, 8),
        "latency_ms": latency_ms,
    }
    logger.info("LLM call completed", extra={"model": body.model, "latency_ms": latency_ms, "total_tokens": answer["total_tokens"]})
    tracing.record_call({**answer, "request_id": current_request_id(), "username": user["username"],
                         "temperature": body.temperature, "max_tokens": body.max_tokens})
    await response_cache.set(key, answer)
    return {**answer, "cached": False}


@router.get("/models")
async def models(user: dict = Depends(get_current_user)) -> dict:
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, connect=5), trust_env=False) as client:
            response = await client.get(f"{settings.LITELLM_URL}/models",
                                        headers={"Authorization": f"Bearer {settings.LITELLM_API_KEY}"})
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise http_error(502, "upstream_error", f"Could not list models: {exc.__class__.__name__}")
