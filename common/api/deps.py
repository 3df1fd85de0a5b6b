"""What routes share: the worker's resources, one database connection per request, and
the caller's user from their Bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
import psycopg
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool, PoolTimeout

from common.adapters.presence import Presence
from common.api.backfill import Backfill
from common.api.errors import Busy
from common.api.fastpath import FastPath
from common.services import sessions
from common.services.errors import Unauthorized, Unavailable
from common.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="the token POST /auth/login returned")


@dataclass
class Resources:
    """Opened in the app's lifespan, closed at shutdown; one set per worker process."""

    settings: Settings
    pool: ConnectionPool
    presence: Presence
    fast_path: FastPath
    backfill: Backfill
    # One slot per pooled connection: requests wait for a slot on the event loop, so a
    # request waiting for a connection never occupies one of the worker threads that the
    # requests holding connections need to finish.
    db_slots: anyio.Semaphore


def resources(request: Request) -> Resources:
    return request.app.state.resources


Res = Annotated[Resources, Depends(resources)]


async def connection(res: Res) -> AsyncIterator[psycopg.Connection]:
    """One pooled assignment_service connection for the whole request; Busy (503) if none
    is free within API_DB_POOL_TIMEOUT."""
    timeout = res.settings.API_DB_POOL_TIMEOUT
    with anyio.move_on_after(timeout) as waited:
        await res.db_slots.acquire()
    if waited.cancelled_caught:
        raise Busy(timeout)
    try:
        conn = await _getconn(res.pool, timeout)
        try:
            yield conn
        finally:
            await run_in_threadpool(res.pool.putconn, conn)
    finally:
        res.db_slots.release()


async def _getconn(pool: ConnectionPool, timeout: float) -> psycopg.Connection:
    """With a slot held a pooled connection is free or can be opened: a timeout here
    means PostgreSQL did not answer, not that the API is busy."""
    try:
        return await run_in_threadpool(pool.getconn, timeout)
    except PoolTimeout:
        raise Unavailable("PostgreSQL", f"PostgreSQL is unavailable: no connection could be "
                          f"opened within {timeout:g} s") from None


Conn = Annotated[psycopg.Connection, Depends(connection)]


def token(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                 Depends(_bearer)]) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing Bearer token")
    if len(credentials.credentials) > 200:
        raise Unauthorized("invalid or expired token")
    return credentials.credentials


Token = Annotated[str, Depends(token)]


def current_user(res: Res, conn: Conn, bearer: Token) -> dict:
    return sessions.authenticate(conn, res.presence, res.settings, bearer)


CurrentUser = Annotated[dict, Depends(current_user)]
