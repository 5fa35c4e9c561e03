"""Upstream errors mapped to precise HTTP answers with incident ids (exercise 4).

Error bodies are JSON at the top level: error, message, incident_id, timestamp, request_id.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import openai
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse

from config.logging_config import get_logger
from utils.context import current_request_id

logger = get_logger("api.errors")


def http_error(status: int, error: str, message: str, headers: dict | None = None, **context) -> HTTPException:
    """An HTTPException carrying a structured body; logged with its incident id."""
    incident_id = f"inc_{uuid.uuid4().hex[:12]}"
    body = {
        "error": error,
        "message": message,
        "incident_id": incident_id,
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "request_id": current_request_id(),
    }
    if context:
        body["context"] = context
    log = logger.error if status >= 500 else logger.warning
    log(f"{status} {error}: {message}", extra={"incident_id": incident_id, "status_code": status, "error_code": error})
    return HTTPException(status_code=status, detail=body, headers=headers)


def map_upstream_error(exc: Exception, *, model: str) -> HTTPException:
    """Translate an exception from the LLM call into the answer the client gets."""
    if isinstance(exc, (openai.APITimeoutError, TimeoutError)):
        return http_error(504, "upstream_timeout", "The LLM provider did not answer in time", model=model)
    if isinstance(exc, openai.APIConnectionError):
        return http_error(503, "upstream_unavailable", "The LLM provider is unreachable", model=model)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        upstream = _upstream_message(exc)
        if status == 429:
            retry_after = exc.response.headers.get("retry-after") if exc.response is not None else None
            return http_error(429, "rate_limited", "The LLM provider is rate limiting requests; retry later",
                              headers={"Retry-After": retry_after} if retry_after else None, model=model)
        if status == 404:
            return http_error(404, "model_not_found", f"Model '{model}' was not found by the LLM provider", model=model)
        if status in (400, 422):
            return http_error(400, "bad_request", f"The LLM provider rejected the request: {upstream}", model=model)
        if status in (401, 403):
            return http_error(502, "upstream_auth_error", "The API is not authorised by the LLM provider", model=model)
        if status >= 500:
            return http_error(502, "upstream_error", f"The LLM provider failed ({status})", model=model)
        return http_error(502, "upstream_error", f"Unexpected answer from the LLM provider ({status})", model=model)
    logger.exception("Unexpected error during the LLM call")
    return http_error(500, "internal_error", "Unexpected error while generating the response", model=model)


def _upstream_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(exc.message)[:300]


async def _structured_http_exception(request: Request, exc: HTTPException):
    if isinstance(exc.detail, dict) and "incident_id" in exc.detail:
        return JSONResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _structured_http_exception)
