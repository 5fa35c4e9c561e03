"""Request models of the public API."""

from __future__ import annotations

from pydantic import BaseModel, Field

MODEL_PATTERN = r"^(groq|gpt|gemini|openrouter)-[a-z0-9-]+$"


class LoginRequest(BaseModel):
    username: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=256)


class GenerateRequest(BaseModel):
    prompt: str = Field(..., min_length=1, max_length=2000)
    model: str = Field("groq-llama3-8b", pattern=MODEL_PATTERN)
    temperature: float = Field(0.7, ge=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1, le=2000)
    system_prompt: str | None = Field(None, max_length=2000)
