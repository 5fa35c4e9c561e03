"""Facts of the exam's service contract (CONTRACT.md) that the probes rely on: one place."""

from __future__ import annotations

import re

# A secret long and random enough for every fixed submission to accept.
STRONG_SECRET = "grader-4f9c2e7a1b6d8e3f0a5c9b2d7e1f4a8c6b3d0e9f"
PLACEHOLDER_SECRET = "your-secret-key-change-in-production"
SHORT_SECRET = "short-secret-1234"  # 17 characters: under the 32 the contract requires
SECRET_VARIABLE = "JWT_SECRET_KEY"

# Handout defaults; the grader also sets the variables, for submissions that read them.
ADMIN_USER, ADMIN_PASSWORD = "admin", "secret123"
PLAIN_USER, PLAIN_PASSWORD = "user", "password123"

LISTED_ORIGIN = "http://localhost:3000"
UNLISTED_ORIGIN = "https://evil.example.com"

MODEL = "gpt-4o-mini"
UNKNOWN_MODEL = "gpt-unknown-model"  # matches the model pattern; the LLM stand-in answers 404

READINESS_PATHS = ("/health/detailed", "/system/health/detailed")
LIVENESS_PATH = "/health"
GENERATE_PATH = "/llm/generate"
LOGIN_PATH = "/auth/login"

REQUEST_ID_HEADER = "X-Request-ID"
GENERATED_REQUEST_ID = re.compile(r"^req_[0-9a-f]{16}$")

# An exit after SIGTERM is clean when it is 0 (uvicorn 0.24) or the re-raised SIGTERM
# (uvicorn 0.54): -15 from Popen, 143 from a shell.
CLEAN_EXIT_CODES = frozenset({0, -15, 143})

# Lines uvicorn writes by itself during a shutdown: they prove no drain or cleanup of the app's.
UVICORN_SHUTDOWN_MESSAGES = (
    "shutting down",
    "waiting for connections to close",
    "waiting for background tasks to complete",
    "waiting for application shutdown",
    "application shutdown complete",
    "finished server process",
)


def service_environment(urls: dict[str, str]) -> dict[str, str]:
    """The contract's variables for a serving configuration, given the dependencies' URLs."""
    return {
        SECRET_VARIABLE: STRONG_SECRET,
        # A JSON list: pydantic-settings parses it, and a comma-splitting submission still
        # never allows the unlisted origin.
        "CORS_ORIGINS": f'["{LISTED_ORIGIN}"]',
        "LITELLM_URL": urls["litellm"],
        "QDRANT_URL": urls["qdrant"],
        "MLFLOW_TRACKING_URI": urls["mlflow"],
        "TEI_URL": urls["tei-embeddings"],
        "AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "AUTH_USER_PASSWORD": PLAIN_PASSWORD,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LOG_LEVEL": "INFO",
        "ENVIRONMENT": "production",
    }
