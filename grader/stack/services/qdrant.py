"""A real Qdrant for the grader: Qdrant's REST API served over qdrant-client's local engine.

Serves the subset that qdrant-client's REST transport uses for collections and points, with
Qdrant's envelope (``{"result", "status": "ok", "time"}``) and error shape
(``{"status": {"error"}}``, 404 for a missing collection). Bodies are parsed and results
serialised with qdrant-client's own REST models. Endpoints are ``async`` so that every call
runs on the event loop thread: the local engine is not meant for concurrent threads.
"""

from __future__ import annotations

import importlib.metadata
import re
import time
from typing import Annotated, Any, TypeVar

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from qdrant_client import QdrantClient
from qdrant_client.http import models

_T = TypeVar("_T")
_CLIENT_VERSION = re.compile(r"python-client/(\d+)\.(\d+)")
_INSTALLED = importlib.metadata.version("qdrant-client").split(".")


def server_version(user_agent: str) -> str:
    """The version to announce: the caller's own major.minor, so that qdrant-client's
    server/client compatibility check (same major, minor within 1) stays quiet for any
    pinned client; the installed client's version for other callers."""
    match = _CLIENT_VERSION.search(user_agent)
    major, minor = match.groups() if match else _INSTALLED[:2]
    return f"{major}.{minor}.0"


class _NamedVector(BaseModel, extra="forbid"):
    name: str
    vector: list[float]


class _SearchRequest(BaseModel, extra="forbid"):
    """``POST /points/search``: gone from qdrant-client 1.20's models, but older clients
    that submissions pin still call it."""

    vector: list[float] | _NamedVector
    filter: models.Filter | None = None
    params: models.SearchParams | None = None
    limit: int = 10
    offset: int | None = None
    with_payload: models.WithPayloadInterface | None = None
    with_vector: models.WithVector | None = None
    score_threshold: float | None = None
    shard_key: models.ShardKeySelector | None = None


def _ok(result: Any, started: float) -> JSONResponse:
    return JSONResponse(
        {"result": to_jsonable_python(result), "status": "ok", "time": time.perf_counter() - started}
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": {"error": message}, "time": 0.0}, status_code=status)


def create_app(engine: QdrantClient | None = None) -> FastAPI:
    """Qdrant's REST API over ``engine`` (default: a fresh in-memory local engine)."""
    db = engine or QdrantClient(location=":memory:")
    app = FastAPI(openapi_url=None)

    @app.exception_handler(ValueError)
    async def engine_error(_: Request, exc: ValueError) -> JSONResponse:
        # The local engine says "Collection x not found" where the server answers 404.
        message = str(exc)
        return _error(404 if "not found" in message else 400, f"Wrong input: {message}")

    @app.exception_handler(RequestValidationError)
    async def format_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, f"Format error in JSON body: {exc.errors()}")

    @app.get("/")
    async def root(request: Request) -> dict[str, object]:
        version = server_version(request.headers.get("user-agent", ""))
        return {"title": "qdrant - vector search engine", "version": version, "commit": None}

    @app.get("/healthz", response_class=PlainTextResponse)
    @app.get("/livez", response_class=PlainTextResponse)
    @app.get("/readyz", response_class=PlainTextResponse)
    async def health() -> str:
        return "healthz check passed"

    @app.get("/collections")
    async def list_collections() -> JSONResponse:
        started = time.perf_counter()
        return _ok(db.get_collections(), started)

    @app.get("/collections/{name}")
    async def get_collection(name: str) -> JSONResponse:
        started = time.perf_counter()
        if not db.collection_exists(name):
            return _error(404, f"Not found: Collection `{name}` doesn't exist!")
        return _ok(db.get_collection(name), started)

    @app.get("/collections/{name}/exists")
    async def collection_exists(name: str) -> JSONResponse:
        started = time.perf_counter()
        return _ok(models.CollectionExistence(exists=db.collection_exists(name)), started)

    @app.put("/collections/{name}")
    async def create_collection(name: str, body: models.CreateCollection) -> JSONResponse:
        started = time.perf_counter()
        if db.collection_exists(name):
            return _error(409, f"Wrong input: Collection `{name}` already exists!")
        created = db.create_collection(
            name, vectors_config=body.vectors, sparse_vectors_config=body.sparse_vectors
        )
        return _ok(created, started)

    @app.delete("/collections/{name}")
    async def delete_collection(name: str) -> JSONResponse:
        started = time.perf_counter()
        return _ok(db.delete_collection(name), started)

    @app.put("/collections/{name}/index")
    async def create_index(name: str, body: models.CreateFieldIndex) -> JSONResponse:
        started = time.perf_counter()
        result = db.create_payload_index(name, body.field_name, field_schema=body.field_schema)
        return _ok(result, started)

    @app.put("/collections/{name}/points")
    async def upsert(name: str, body: Annotated[models.PointInsertOperations, Body()]) -> JSONResponse:
        started = time.perf_counter()
        points = body.points if isinstance(body, models.PointsList) else body.batch
        return _ok(db.upsert(name, points=points), started)

    @app.post("/collections/{name}/points")
    async def retrieve(name: str, body: models.PointRequest) -> JSONResponse:
        started = time.perf_counter()
        records = db.retrieve(
            name, body.ids, with_payload=_default(body.with_payload, True), with_vectors=_default(body.with_vector, False)
        )
        return _ok(records, started)

    @app.post("/collections/{name}/points/delete")
    async def delete_points(name: str, body: Annotated[models.PointsSelector, Body()]) -> JSONResponse:
        started = time.perf_counter()
        return _ok(db.delete(name, points_selector=body), started)

    @app.post("/collections/{name}/points/search")
    async def search(name: str, body: _SearchRequest) -> JSONResponse:
        started = time.perf_counter()
        named = body.vector if isinstance(body.vector, _NamedVector) else None
        response = db.query_points(
            name,
            query=named.vector if named else body.vector,
            using=named.name if named else None,
            query_filter=body.filter,
            search_params=body.params,
            limit=body.limit,
            offset=body.offset,
            with_payload=_default(body.with_payload, False),
            with_vectors=_default(body.with_vector, False),
            score_threshold=body.score_threshold,
        )
        return _ok(response.points, started)

    @app.post("/collections/{name}/points/query")
    async def query(name: str, body: models.QueryRequest) -> JSONResponse:
        started = time.perf_counter()
        response = db.query_points(
            name,
            query=body.query,
            using=body.using,
            prefetch=body.prefetch,
            query_filter=body.filter,
            search_params=body.params,
            limit=_default(body.limit, 10),
            offset=body.offset,
            with_payload=_default(body.with_payload, False),
            with_vectors=_default(body.with_vector, False),
            score_threshold=body.score_threshold,
            lookup_from=body.lookup_from,
        )
        return _ok(response, started)

    @app.post("/collections/{name}/points/scroll")
    async def scroll(name: str, body: Annotated[models.ScrollRequest | None, Body()] = None) -> JSONResponse:
        started = time.perf_counter()
        request = body or models.ScrollRequest()
        records, next_offset = db.scroll(
            name,
            scroll_filter=request.filter,
            limit=_default(request.limit, 10),
            order_by=request.order_by,
            offset=request.offset,
            with_payload=_default(request.with_payload, True),
            with_vectors=_default(request.with_vector, False),
        )
        return _ok(models.ScrollResult(points=records, next_page_offset=next_offset), started)

    @app.post("/collections/{name}/points/count")
    async def count(name: str, body: Annotated[models.CountRequest | None, Body()] = None) -> JSONResponse:
        started = time.perf_counter()
        request = body or models.CountRequest()
        return _ok(db.count(name, count_filter=request.filter, exact=_default(request.exact, True)), started)

    return app


def _default(value: _T | None, default: _T) -> _T:
    """Qdrant's default for a field the request left out."""
    return default if value is None else value
