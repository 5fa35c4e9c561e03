"""Typed settings read from the environment (exercise 1: secure configuration).

JWT_SECRET_KEY has no default and is validated; CORS is an explicit list, never "*".
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config import env_validator

DEFAULT_CORS_ORIGINS = ["http://localhost:3000", "http://localhost:8000"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    JWT_SECRET_KEY: str = Field(..., description="required, >= 32 chars, not a placeholder")
    JWT_ALGORITHM: str = "HS256"
    JWT_EXPIRE_MINUTES: int = 60
    CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_CORS_ORIGINS))

    LITELLM_URL: str = "http://localhost:4000"
    LITELLM_API_KEY: str = "sk-litellm-local"
    QDRANT_URL: str = "http://localhost:6333"
    MLFLOW_TRACKING_URI: str = "http://localhost:5000"
    TEI_URL: str = "http://localhost:8080"

    AUTH_ADMIN_PASSWORD: str = "secret123"
    AUTH_USER_PASSWORD: str = "password123"
    LOG_LEVEL: str = "INFO"
    ENVIRONMENT: str = "development"

    @field_validator("JWT_SECRET_KEY")
    @classmethod
    def _secret_is_strong(cls, value: str) -> str:
        return env_validator.check_jwt_secret(value)

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [o.strip() for o in text.split(",")]
        if isinstance(value, list):
            origins = [str(o).strip().rstrip("/") for o in value if str(o).strip()]
            if "*" in origins:
                raise ValueError("CORS_ORIGINS must list explicit origins, '*' is not allowed")
            return origins
        return value

    @field_validator("LITELLM_URL", "QDRANT_URL", "MLFLOW_TRACKING_URI", "TEI_URL")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        env_validator.fail_fast(exc)
        raise  # unreachable: fail_fast exits


settings = load_settings()
