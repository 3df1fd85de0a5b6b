"""The assignment service's HTTP API: `uvicorn common.api.app:app --port 3000`.

Nothing connects at import: the pool, the Redis client and the fast-path publisher are
opened in the lifespan, per worker process. Tests build their own app with `create_app`.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI

from common import logs
from common.adapters.presence import Presence
from common.api import errors, method_not_allowed, metrics, supervision_etag
from common.api.backfill import Backfill
from common.api.body_limit import BodyLimit
from common.api.deps import Resources
from common.api.fastpath import FastPath
from common.api.routes import router
from common.api.supervision import router as supervision_router
from common.health import ServiceHealth
from common.production import refuse_unsafe_start
from common.resources import assignment_pool, redis_client
from common.settings import Settings, load_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """The API for these settings; its resources live as long as its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.resources = _open(settings)
        app.state.health = ServiceHealth(settings, app.state.resources.pool,
                                         app.state.resources.presence.client)
        log.info("API ready (namespace %r)", settings.NAMESPACE)
        try:
            yield
        finally:
            app.state.health.close()
            app.state.system_metrics.close()
            _close(app.state.resources)

    app = FastAPI(
        title="Event assignment service",
        description="Sessions, availability, operators' assignments and decisions.",
        version="1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    method_not_allowed.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.API_MAX_BODY_BYTES)
    supervision_etag.install(app)
    app.include_router(router)
    app.include_router(supervision_router)
    metrics.install(app, settings)
    return app


def _open(settings: Settings) -> Resources:
    size = settings.API_DB_POOL_SIZE
    limiter = anyio.to_thread.current_default_thread_limiter()
    # Requests holding a connection must always find a worker thread (decisions.md).
    limiter.total_tokens = max(limiter.total_tokens, size + 8)
    pool = assignment_pool(settings, max_size=size)
    client = redis_client(settings)
    presence = Presence(client, settings)
    fast_path = FastPath(settings)
    backfill = Backfill(settings, presence)
    fast_path.start()
    backfill.start()
    return Resources(settings, pool, presence, fast_path, backfill, anyio.Semaphore(size))


def _close(res: Resources) -> None:
    res.fast_path.close()
    res.backfill.close()
    res.presence.client.close()
    res.pool.close()


def production_app() -> FastAPI:
    """The app uvicorn imports: our log format replaces uvicorn's (which it set up first),
    and in production it refuses unsafe settings before serving (one line, exit status 2:
    uvicorn stops at import instead of logging a traceback)."""
    settings = load_settings()
    logs.configure("api", settings)
    refuse_unsafe_start(settings)
    return create_app(settings)


app = production_app()
