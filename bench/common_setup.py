"""A benchmark's own namespace and databases on the local servers, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from common.adapters import broker
from common.adapters.migrations import migrate
from common.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def bench_settings(name: str, **overrides):
    """Fresh databases and NAMESPACE for one benchmark; dropped when it ends."""
    run = f"{name}_{uuid.uuid4().hex[:6]}"
    settings = Settings(
        POSTGRES_DB_RELAY=f"bench_relay_{run}",
        POSTGRES_DB_ASSIGNMENT=f"bench_assignment_{run}",
        NAMESPACE=f"bench_{run}",
        **overrides,
    )
    migrate(settings)
    try:
        yield settings
    finally:
        _drop(settings)


def _drop(settings: Settings) -> None:
    with psycopg.connect(settings.postgres_dsn("postgres"), autocommit=True) as conn:
        for db in (settings.POSTGRES_DB_RELAY, settings.POSTGRES_DB_ASSIGNMENT):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
    with contextlib.suppress(Exception):
        connection = broker.connect(settings, "bench-teardown")
        channel = connection.channel()
        for base in broker.QUEUES:
            channel.queue_delete(settings.name(base))
            channel.queue_delete(broker.dlq_name(settings.name(base)))
        connection.close()
    from common.resources import redis_client

    client = redis_client(settings)
    keys = list(client.scan_iter(match=f"{settings.NAMESPACE}.*", count=1000))
    if keys:
        client.delete(*keys)


@contextlib.contextmanager
def processes(settings: Settings, *names: str):
    """Run `python -m consumers NAME` for each name with these settings."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in settings.model_dump().items() if v is not None})
    env["PYTHONPATH"] = str(ROOT)
    env["LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    procs = [subprocess.Popen([sys.executable, "-m", "consumers", n], cwd=ROOT, env=env)
             for n in names]
    try:
        time.sleep(2)  # let them connect and declare before the clock starts
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_until(check, timeout: float = 300, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"benchmark condition not met in {timeout}s")


def median(values) -> float:
    return statistics.median(values) if values else float("nan")
