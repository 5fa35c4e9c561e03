"""Structured JSON logging on stdout (exercise 6).

One JSON object per line: timestamp (ISO 8601, UTC), level, logger, message, request_id,
plus any `extra=` fields. uvicorn configures its own plain-text handlers before importing
the app, so setup_logging() (run at import of main) re-routes them here; library printing
(MLflow's run URL) and MLflow's own handler are switched off through their env switches.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from datetime import datetime, timezone

from utils.context import request_id_var

# Must be set before mlflow is imported (it is imported lazily, later).
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "1")
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName", "color_message"}
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "openai", "urllib3", "mlflow", "alembic")
_HANDLER_NAME = "json-stdout"


class JSONFormatter(logging.Formatter):
    """Render a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, default=str, ensure_ascii=False)


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


def _json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


def setup_logging(level: str | None = None) -> None:
    """Route the root logger and uvicorn's loggers to one JSON handler on stdout (idempotent)."""
    level_name = (level or os.getenv("LOG_LEVEL", "INFO")).upper()
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME and not _is_std_stream(h)]
    root.addHandler(_json_handler())
    root.setLevel(level_name)
    for name in _UVICORN_LOGGERS:
        uv_logger = logging.getLogger(name)
        uv_logger.handlers = []
        uv_logger.propagate = True
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def _is_std_stream(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in (sys.stdout, sys.stderr)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
