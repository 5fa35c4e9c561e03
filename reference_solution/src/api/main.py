"""ASGI entry point: `python -m uvicorn main:app` from src/api.

Import order matters: logging first (re-routes uvicorn's loggers, silences library
printing), then settings (fails fast on a bad configuration before heavy imports).
"""

from config.logging_config import setup_logging

setup_logging()

from config.settings import settings  # noqa: E402  (fail fast before heavy imports)
from config.app import create_app  # noqa: E402

app = create_app()

__all__ = ["app", "settings"]
