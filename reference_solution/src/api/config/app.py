"""The application factory: routers, middleware (outermost first: request id, shutdown,
CORS, security, body limits), error handlers, liveness."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from config.lifespan import lifespan
from config.settings import settings
from middleware.request_id import RequestIDMiddleware
from middleware.request_limits import RequestLimitsMiddleware
from middleware.security import SecurityMiddleware
from middleware.shutdown import ShutdownMiddleware
from routers import auth, health, llm
from utils.errors import install_error_handlers


def create_app() -> FastAPI:
    app = FastAPI(title="LLMOps API", version="1.0.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(auth.router)
    app.include_router(llm.router)
    app.include_router(health.router)

    @app.get("/health", tags=["health"])
    async def liveness() -> dict:
        """Liveness: the process runs. Never depends on a dependency."""
        return {"status": "alive"}

    # add_middleware prepends: the last one added is the outermost.
    app.add_middleware(RequestLimitsMiddleware)
    app.add_middleware(SecurityMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.CORS_ORIGINS,
        allow_credentials=True,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID"],
    )
    app.add_middleware(ShutdownMiddleware)
    app.add_middleware(RequestIDMiddleware)
    return app
