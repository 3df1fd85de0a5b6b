"""What routes share: the worker's resources, one database connection per request, and
the caller's user from their Bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from common.adapters.presence import Presence
from common.api.fastpath import FastPath
from common.services import sessions
from common.services.errors import Unauthorized
from common.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="the token POST /auth/login returned")


@dataclass
class Resources:
    """Opened in the app's lifespan, closed at shutdown; one set per worker process."""

    settings: Settings
    pool: ConnectionPool
    presence: Presence
    fast_path: FastPath


def resources(request: Request) -> Resources:
    return request.app.state.resources


Res = Annotated[Resources, Depends(resources)]


def connection(res: Res) -> Iterator[psycopg.Connection]:
    """One pooled assignment_service connection for the whole request."""
    with res.pool.connection(timeout=5) as conn:
        yield conn


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
