"""Fail-fast validation of the environment (exercise 1).

A bad configuration ends the process with exit status 1 and ONE JSON line on stderr
naming the offending variable: no traceback, no half-started server.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from pydantic import ValidationError

MIN_SECRET_LENGTH = 32
INSECURE_SECRETS = frozenset(
    {
        "your-secret-key-change-in-production",
        "your-secret-key",
        "your_secret_key",
        "secret",
        "secret123",
        "secretkey",
        "secret-key",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "password",
        "password123",
        "jwt-secret",
        "jwt_secret",
        "default",
        "test",
        "dev",
        "example",
        "xxx",
    }
)

# Template values (the handout's .env.example suggests
# "your-secure-random-key-at-least-32-characters-long": 50 characters, yet no secret).
TEMPLATE_PREFIXES = ("your-", "your_", "<")
PLACEHOLDER_WORDS = ("change-in-production", "changeme", "change-me", "placeholder")


def check_jwt_secret(value: str | None) -> str:
    """Return the secret if it is usable, else raise ValueError saying why."""
    if value is None or not value.strip():
        raise ValueError("JWT_SECRET_KEY is required and not set")
    lowered = value.strip().lower()
    if lowered in INSECURE_SECRETS or lowered.startswith(TEMPLATE_PREFIXES) or any(
            word in lowered for word in PLACEHOLDER_WORDS):
        raise ValueError("JWT_SECRET_KEY is a known placeholder; generate one with `openssl rand -hex 32`")
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"JWT_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters (got {len(value)})")
    return value


def describe(exc: ValidationError) -> str:
    """One line naming every invalid variable."""
    parts = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error.get("loc", ())) or "configuration"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing":
            message = f"{name} is required and not set"
        parts.append(message if name in message else f"{name}: {message}")
    return "Invalid configuration: " + "; ".join(parts)


def fail_fast(exc: ValidationError) -> None:
    """Write one JSON line on stderr and exit 1 (raises SystemExit, no traceback)."""
    line = {
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "level": "CRITICAL",
        "logger": "config.env_validator",
        "message": describe(exc),
        "request_id": None,
    }
    sys.stderr.write(json.dumps(line) + "\n")
    sys.stderr.flush()
    raise SystemExit(1)
