"""Finding the three servers for a test run, and isolating each test inside them."""

from __future__ import annotations

import os
import socket
from contextlib import suppress

import psycopg
from psycopg import sql

from common.adapters import broker
from common.adapters.migrations import SCHEMAS, SQL_ROOT, apply_migrations
from common.resources import redis_client
from common.settings import Settings

SERVERS = {
    "PostgreSQL": ("POSTGRES_HOST", "POSTGRES_PORT", "localhost", 5432),
    "Redis": ("REDIS_HOST", "REDIS_PORT", "localhost", 6379),
    "RabbitMQ": ("RABBITMQ_HOST", "RABBITMQ_PORT", "localhost", 5672),
}
_containers: list = []


def _answers(host: str, port: int) -> bool:
    with suppress(OSError), socket.create_connection((host, port), timeout=2):
        return True
    return False


def ensure_servers() -> dict[str, str]:
    """Environment overrides pointing at servers that answer; exits naming what is missing."""
    overrides: dict[str, str] = {}
    missing = []
    for name, (host_var, port_var, host, port) in SERVERS.items():
        host = os.environ.get(host_var, host)
        port = int(os.environ.get(port_var, port))
        if _answers(host, port):
            continue
        started = _start_container(name)
        if started is None:
            missing.append(f"{name} at {host}:{port}")
        else:
            overrides.update(started)
    if missing:
        import pytest

        pytest.exit(
            "servers not answering and no Docker engine to start them: " + ", ".join(missing),
            returncode=3,
        )
    return overrides


def _start_container(name: str) -> dict[str, str] | None:
    """Start `name` with testcontainers; None when there is no Docker engine."""
    try:
        from docker.errors import DockerException
    except ImportError:
        return None
    try:
        if name == "PostgreSQL":
            from testcontainers.postgres import PostgresContainer

            c = PostgresContainer("postgres:15", username="postgres", password="postgres")
            c.start()
            _containers.append(c)
            return {
                "POSTGRES_HOST": c.get_container_host_ip(),
                "POSTGRES_PORT": str(c.get_exposed_port(5432)),
                "POSTGRES_PASSWORD": "postgres",
            }
        if name == "Redis":
            from testcontainers.redis import RedisContainer

            c = RedisContainer("redis:7")
            c.start()
            _containers.append(c)
            return {"REDIS_HOST": c.get_container_host_ip(), "REDIS_PORT": str(c.get_exposed_port(6379))}
        from testcontainers.rabbitmq import RabbitMqContainer

        c = RabbitMqContainer("rabbitmq:3.12")
        c.start()
        _containers.append(c)
        return {
            "RABBITMQ_HOST": c.get_container_host_ip(),
            "RABBITMQ_PORT": str(c.get_exposed_port(5672)),
        }
    except DockerException:
        return None


def prepare_templates(run_id: str) -> Settings:
    """Migrate one pair of template databases for the run; tests clone them."""
    settings = Settings(
        POSTGRES_DB_RELAY=f"tmpl_relay_{run_id}",
        POSTGRES_DB_ASSIGNMENT=f"tmpl_assignment_{run_id}",
        NAMESPACE=f"t{run_id}",
    )
    for dbname, folder in (
        (settings.POSTGRES_DB_RELAY, SCHEMAS["relay"]),
        (settings.POSTGRES_DB_ASSIGNMENT, SCHEMAS["assignment"]),
    ):
        _admin(settings, sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
        _admin(settings, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        apply_migrations(settings.postgres_dsn(dbname), SQL_ROOT / folder)
    return settings


def _admin(settings: Settings, statement) -> None:
    with psycopg.connect(settings.postgres_dsn("postgres"), autocommit=True) as conn:
        conn.execute(statement)


def isolated_settings(base: Settings, test_id: str, **overrides) -> Settings:
    """Clone the templates into fresh databases; a namespace of the test's own."""
    values = base.model_dump()
    values.update(
        POSTGRES_DB_RELAY=f"relay_{test_id}",
        POSTGRES_DB_ASSIGNMENT=f"assignment_{test_id}",
        NAMESPACE=f"t{test_id}",
    )
    values.update(overrides)
    settings = Settings(**values)
    for template, target in (
        (base.POSTGRES_DB_RELAY, settings.POSTGRES_DB_RELAY),
        (base.POSTGRES_DB_ASSIGNMENT, settings.POSTGRES_DB_ASSIGNMENT),
    ):
        _admin(
            base,
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(target), sql.Identifier(template)
            ),
        )
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a subprocess needs to run with exactly these settings."""
    env = dict(os.environ)
    for key, value in settings.model_dump().items():
        if value is not None:
            env[key] = str(value)
    return env


def tear_down(settings: Settings) -> None:
    """Drop the test's databases, queues and keys (best effort)."""
    for dbname in (settings.POSTGRES_DB_RELAY, settings.POSTGRES_DB_ASSIGNMENT):
        with suppress(psycopg.Error):
            _admin(
                settings,
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)),
            )
    with suppress(Exception):
        connection = broker.connect(settings, "test-teardown")
        channel = connection.channel()
        for base in broker.QUEUES:
            for queue in (settings.name(base), broker.dlq_name(settings.name(base))):
                channel.queue_delete(queue)
        connection.close()
    with suppress(Exception):
        delete_namespace_keys(settings)


def delete_namespace_keys(settings: Settings) -> None:
    """What a Redis flush does to one test's namespace (never FLUSHALL: runs share Redis)."""
    client = redis_client(settings)
    keys = list(client.scan_iter(match=f"{settings.NAMESPACE}.*", count=1000))
    if keys:
        client.delete(*keys)
