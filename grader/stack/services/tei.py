"""The TEI stand-in: text-embeddings-inference's HTTP API with deterministic vectors.

``GET /health``, ``GET /info``, ``POST /embed`` (``{"inputs": str | [str]}`` -> one vector per
input) and OpenAI-style ``POST /v1/embeddings``. A vector is seeded by the SHA-256 of its text
and normalised: the same text always gets the same unit vector, different texts differ.
"""

from __future__ import annotations

import hashlib
import math
import random

from fastapi import FastAPI, Response
from pydantic import BaseModel

DIMENSION = 384
MODEL_ID = "BAAI/bge-small-en-v1.5"  # the 384-dimension model the exam's compose file serves


def embed(text: str) -> list[float]:
    """The unit vector of ``text``."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    vector = [rng.gauss(0.0, 1.0) for _ in range(DIMENSION)]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


class _EmbedRequest(BaseModel):
    inputs: str | list[str]
    normalize: bool = True
    truncate: bool = False


class _OpenAIEmbeddingsRequest(BaseModel):
    input: str | list[str]
    model: str = MODEL_ID


def _texts(inputs: str | list[str]) -> list[str]:
    return [inputs] if isinstance(inputs, str) else inputs


def create_app() -> FastAPI:
    """The TEI stand-in as an ASGI app."""
    app = FastAPI(openapi_url=None)

    @app.get("/health")
    def health() -> Response:
        return Response(status_code=200)

    @app.get("/info")
    def info() -> dict[str, object]:
        return {
            "model_id": MODEL_ID,
            "model_dtype": "float32",
            "model_type": {"embedding": {"pooling": "cls"}},
            "max_input_length": 512,
            "max_client_batch_size": 32,
            "version": "1.5.0",
        }

    @app.post("/embed")
    def embed_texts(body: _EmbedRequest) -> list[list[float]]:
        return [embed(t) for t in _texts(body.inputs)]

    @app.post("/v1/embeddings")
    def openai_embeddings(body: _OpenAIEmbeddingsRequest) -> dict[str, object]:
        texts = _texts(body.input)
        tokens = sum(len(t.split()) for t in texts)
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(texts)],
            "model": body.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return app
