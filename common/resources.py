"""Builds clients from settings. The one place that connects; nothing connects at import."""

from __future__ import annotations

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


def assignment_pool(settings: Settings, max_size: int = 10) -> ConnectionPool:
    """A pool on assignment_service for the API and the console."""
    return ConnectionPool(
        settings.assignment_dsn,
        min_size=1,
        max_size=max_size,
        kwargs={"row_factory": dict_row},
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
