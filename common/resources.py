"""Builds clients from settings. The one place that connects; nothing connects at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from common.adapters.amqp import rabbitmq_parameters  # noqa: F401 - one place to import from
from common.adapters.broker import ConfirmingPublisher
from common.settings import Settings


def relay_connection(settings: Settings, **kwargs) -> psycopg.Connection:
    """A connection to relay_service (rows as dicts)."""
    return psycopg.connect(settings.relay_dsn, row_factory=dict_row, **kwargs)


def assignment_connection(settings: Settings, **kwargs) -> psycopg.Connection:
    """A connection to assignment_service (rows as dicts)."""
    return psycopg.connect(settings.assignment_dsn, row_factory=dict_row, **kwargs)


@contextmanager
def one_statement(conn: psycopg.Connection) -> Iterator[psycopg.Cursor]:
    """A cursor for one statement that is its own transaction: on an autocommit connection
    no BEGIN and COMMIT round trips around it; on any other, inside `conn.transaction()`."""
    if conn.autocommit:
        with conn.cursor() as cur:
            yield cur
    else:
        with conn.transaction(), conn.cursor() as cur:
            yield cur


def assignment_pool(settings: Settings, max_size: int = 10) -> ConnectionPool:
    """A pool on assignment_service for the API: autocommit, so a statement that is its own
    transaction costs one round trip (`one_statement`); `conn.transaction()` groups more."""
    return ConnectionPool(
        settings.assignment_dsn,
        min_size=1,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": True},
        open=True,
    )


def redis_client(settings: Settings, timeout: float = 5) -> redis.Redis:
    """Redis from REDIS_URL (`rediss://` is TLS) when set, else REDIS_HOST/PORT/DB, with
    REDIS_PASSWORD when one is set."""
    options = {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
    }
    if settings.REDIS_PASSWORD:
        options["password"] = settings.REDIS_PASSWORD
    if settings.REDIS_URL:
        return redis.Redis.from_url(settings.REDIS_URL, **options)
    return redis.Redis(host=settings.REDIS_HOST, port=settings.REDIS_PORT,
                       db=settings.REDIS_DB, **options)


def publisher(settings: Settings, name: str) -> ConfirmingPublisher:
    return ConfirmingPublisher(settings, name)
