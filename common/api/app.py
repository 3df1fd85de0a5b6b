"""The assignment service's HTTP API: `uvicorn common.api.app:app --port 3000`.

Nothing connects at import: the pool, the Redis client and the fast-path publisher are
opened in the lifespan, per worker process. Tests build their own app with `create_app`.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from common import logs
from common.adapters.presence import Presence
from common.api import errors, metrics
from common.api.deps import Resources
from common.api.fastpath import FastPath
from common.api.routes import router
from common.resources import assignment_pool, redis_client
from common.settings import Settings, load_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """The API for these settings; its resources live as long as its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.resources = _open(settings)
        log.info("API ready (namespace %r)", settings.NAMESPACE)
        try:
            yield
        finally:
            _close(app.state.resources)

    app = FastAPI(
        title="Event assignment service",
        description="Sessions, availability, operators' assignments and decisions.",
        version="1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(router)
    metrics.install(app, settings)
    return app


def _open(settings: Settings) -> Resources:
    pool = assignment_pool(settings)
    client = redis_client(settings)
    fast_path = FastPath(settings)
    fast_path.start()
    return Resources(settings, pool, Presence(client, settings), fast_path)


def _close(res: Resources) -> None:
    res.fast_path.close()
    res.presence.client.close()
    res.pool.close()


def _serving_app() -> FastAPI:
    """The app uvicorn imports: our log format replaces uvicorn's (which it set up first)."""
    settings = load_settings()
    logs.configure("api", settings)
    return create_app(settings)


app = _serving_app()
