"""Builds clients from settings. The one place that connects; nothing connects at import."""

from __future__ import annotations

import psycopg
import redis
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

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


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis(
        host=settings.REDIS_HOST,
        port=settings.REDIS_PORT,
        db=settings.REDIS_DB,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


def publisher(settings: Settings, name: str) -> ConfirmingPublisher:
    return ConfirmingPublisher(settings, name)
