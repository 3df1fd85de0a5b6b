"""Do PostgreSQL, Redis and RabbitMQ answer? `make servers` and CI, and the API's /health.

`python -m common.health` exits 1 with one line per server that does not answer; it checks
the `postgres` database, since it runs before the service databases exist. The API's
/health uses `ServiceHealth` instead: its own pools and clients, the two service databases,
and the heartbeats of the long-running processes (DESIGN.md, Operations).
"""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import suppress

import pika
import psycopg
import redis
from psycopg_pool import ConnectionPool

from common import heartbeat, resources
from common.adapters import broker
from common.settings import Settings, load_settings

log = logging.getLogger(__name__)

# One check waits at most this long for a server (seconds).
CHECK_TIMEOUT = 3.0


def check_postgres(settings: Settings) -> str | None:
    try:
        with psycopg.connect(settings.postgres_dsn("postgres"), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return _first_line(error)
    return None


def check_redis(settings: Settings, client: redis.Redis | None = None) -> str | None:
    try:
        (client or resources.redis_client(settings, timeout=3)).ping()
    except redis.RedisError as error:
        return _first_line(error)
    return None


def check_rabbitmq(settings: Settings) -> str | None:
    """None when any of the broker addresses answers (pika tries them in order)."""
    try:
        broker.connect(settings, "health-check", socket_timeout=CHECK_TIMEOUT).close()
    except Exception as error:  # pika raises many unrelated types for "cannot connect"
        return _first_line(error) or type(error).__name__
    return None


def check_all(settings: Settings) -> dict[str, str | None]:
    """Server name -> None when it answers, else why not."""
    return {
        "postgres": check_postgres(settings),
        "redis": check_redis(settings),
        "rabbitmq": check_rabbitmq(settings),
    }


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


class BrokerProbe:
    """One RabbitMQ connection kept open for /health, instead of a new one per call.

    pika is not thread-safe, so checks take turns (with the keeper, which answers the
    broker's heartbeats between checks). A connection that died with a broker restart is
    replaced once before the broker counts as down.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._conn: pika.BlockingConnection | None = None
        self._keeper = broker.Keeper(settings, "api-health-keeper", self._lock,
                                     lambda: self._conn, self._drop)

    def check(self) -> str | None:
        with self._lock:
            for _ in range(2):
                try:
                    if self._conn is None or not self._conn.is_open:
                        # Any broker address that answers counts as up.
                        self._conn = broker.connect(self.settings, "api-health",
                                                    socket_timeout=CHECK_TIMEOUT,
                                                    stack_timeout=CHECK_TIMEOUT)
                        self._keeper.start()
                    self._conn.process_data_events(time_limit=0)
                    return None
                except Exception as error:  # pika raises many unrelated types
                    why = _first_line(error) or type(error).__name__
                    self._drop()
            return why

    def _drop(self) -> None:
        """Close the connection; called with the lock held."""
        if self._conn is not None:
            with suppress(Exception):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._keeper.stop()
        with self._lock:
            self._drop()


class ServiceHealth:
    """The API's /health: built once in its lifespan from the API's own pool and client."""

    def __init__(self, settings: Settings, assignment: ConnectionPool, client: redis.Redis):
        self.settings = settings
        self.assignment = assignment
        self.relay = ConnectionPool(settings.relay_dsn, min_size=0, max_size=2, open=True,
                                    name="health-relay")
        self.client = client
        self.rabbitmq = BrokerProbe(settings)

    def close(self) -> None:
        self.rabbitmq.close()
        self.relay.close()

    def report(self) -> tuple[int, dict]:
        """(HTTP status, body of DESIGN.md). Raw errors go to the log, never the body."""
        checks = {
            "PostgreSQL relay_service": lambda: _check_pool(self.relay),
            "PostgreSQL assignment_service": lambda: _check_pool(self.assignment),
            "Redis": lambda: check_redis(self.settings, self.client),
            "RabbitMQ": self.rabbitmq.check,
        }
        servers = {}
        for name, check in checks.items():
            why = check()
            if why:
                log.warning("health: %s is not answering: %s", name, why)
            servers[name] = "down" if why else "ok"
        processes = {}
        if servers["Redis"] == "ok":
            try:
                processes = heartbeat.read_processes(self.client, self.settings)
            except redis.RedisError as error:
                log.warning("health: heartbeats unreadable: %s", _first_line(error))
                servers["Redis"] = "down"
        down = [name for name, state in servers.items() if state != "ok"]
        body = {"status": "ok", "servers": servers, "processes": processes}
        if down:
            return 503, {**body, "status": "down", "detail": "not answering: " + ", ".join(down)}
        if any(p["status"] != "ok" for p in processes.values()):
            body["status"] = "degraded"
        return 200, body


def _check_pool(pool: ConnectionPool) -> str | None:
    try:
        with pool.connection(timeout=CHECK_TIMEOUT) as conn:
            conn.execute("SELECT 1")
    except Exception as error:  # psycopg.Error or the pool's PoolTimeout
        return _first_line(error) or type(error).__name__
    return None


def main() -> None:
    settings = load_settings()
    where = {
        "postgres": f"PostgreSQL at {settings.POSTGRES_HOST}:{settings.POSTGRES_PORT}",
        "redis": f"Redis at {settings.REDIS_HOST}:{settings.REDIS_PORT}",
        "rabbitmq": f"RabbitMQ at {settings.RABBITMQ_HOST}:{settings.RABBITMQ_PORT}",
    }
    failed = {name: why for name, why in check_all(settings).items() if why}
    for name, why in failed.items():
        print(f"{where[name]} is not answering: {why}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
