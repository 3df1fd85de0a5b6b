"""Do PostgreSQL, Redis and RabbitMQ answer? Used by `make up`, the API's /health and CI.

`python -m common.health` exits 1 with one line per server that does not answer.
"""

from __future__ import annotations

import sys

import pika
import psycopg
import redis

from common import resources
from common.settings import Settings, load_settings


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
    params = resources.rabbitmq_parameters(settings)
    params.socket_timeout = 3
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
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
