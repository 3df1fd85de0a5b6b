"""Every knob of the system, read from the environment (and `.env`).

One class, validated at start: a nonsense value stops the process with one line naming the
variable (see `load_settings`). Names follow the system this one replaces.
"""

from __future__ import annotations

import sys
from functools import cached_property
from typing import Literal
from urllib.parse import quote

from croniter import croniter
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CRON_FIELDS = ("INACTIVE_USER_CRON", "EXPIRED_EVENT_CRON", "CHECK_REVIEWED_CRON")


class Settings(BaseSettings):
    """Configuration of every process. Defaults point at localhost."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    POSTGRES_HOST: str = "localhost"
    POSTGRES_PORT: int = Field(5432, ge=1, le=65535)
    POSTGRES_USER: str = "postgres"
    POSTGRES_PASSWORD: str = ""
    POSTGRES_DB_RELAY: str = "relay_service"
    POSTGRES_DB_ASSIGNMENT: str = "assignment_service"

    REDIS_HOST: str = "localhost"
    REDIS_PORT: int = Field(6379, ge=1, le=65535)
    REDIS_DB: int = Field(0, ge=0, le=15)

    RABBITMQ_HOST: str = "localhost"
    RABBITMQ_PORT: int = Field(5672, ge=1, le=65535)
    RABBITMQ_USER: str = "guest"
    RABBITMQ_PASSWORD: str = "guest"
    RABBITMQ_VHOST: str = "/"
    RABBITMQ_URL: str | None = None
    # Quorum queues' delivery limit: a message that crashes its consumer this many times
    # more is dead-lettered by the broker itself.
    RABBITMQ_DELIVERY_LIMIT: int = Field(5, ge=1, le=1000)

    MAX_ASSIGNMENTS: int = Field(50, ge=1, le=10_000)
    SESSION_TTL: int = Field(300, ge=5, le=86_400)
    ASSIGNMENT_EXPIRY_MINUTES: float = Field(15, gt=0, le=7 * 24 * 60)
    ROUTING_MODE: Literal["region", "global"] = "region"
    OVERFLOW_AFTER_SECONDS: int = Field(120, ge=-1)
    NAMESPACE: str = Field("", pattern=r"^[A-Za-z0-9_.-]*$", max_length=64)

    INACTIVE_USER_CRON: str = "0 0 * * *"
    EXPIRED_EVENT_CRON: str = "0 */2 * * *"
    CHECK_REVIEWED_CRON: str = "*/30 * * * *"
    RELAY_POLL_SECONDS: int = Field(60, ge=5, le=86_400)
    # The relay's own fallback poll when no NOTIFY arrives (long-running process).
    RELAY_IDLE_POLL_SECONDS: float = Field(5.0, gt=0, le=3600)
    RELAY_BATCH_SIZE: int = Field(1000, ge=1, le=50_000)
    # relay-poll re-dispatches events dispatched this long ago that were never stored.
    REDISPATCH_AFTER_SECONDS: int = Field(300, ge=1)
    # Outbox sweep publishes rows whose last publish is older than this.
    OUTBOX_REPUBLISH_SECONDS: int = Field(60, ge=0)

    ASSIGNMENT_BATCH_SIZE: int = Field(1000, ge=1, le=10_000)
    # Periodic backfill sweep inside each assignment consumer; 0 switches it off.
    BACKFILL_SWEEP_SECONDS: float = Field(5.0, ge=0)

    GENERATE_MAX_COUNT: int = Field(1_000_000, ge=1)

    API_HOST: str = "0.0.0.0"
    API_PORT: int = Field(3000, ge=1, le=65535)
    CONSOLE_PORT: int = Field(3001, ge=1, le=65535)
    API_URL: str = "http://localhost:3000"
    LOGIN_MAX_FAILURES: int = Field(5, ge=1)
    LOGIN_LOCKOUT_SECONDS: int = Field(60, ge=1)

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Observability: log lines as text or JSON; each consumer's Prometheus port (unset: the
    # process's own default, 0: no metrics); how long the API's /metrics reuses its reading.
    LOG_FORMAT: Literal["text", "json"] = "text"
    METRICS_PORT: int | None = Field(None, ge=0, le=65535)
    METRICS_HOST: str = "0.0.0.0"
    METRICS_CACHE_SECONDS: float = Field(2.0, ge=0, le=60)

    @field_validator(*CRON_FIELDS)
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"not a valid cron expression: {value!r}")
        return value

    # ---- derived names -------------------------------------------------------------

    def name(self, base: str) -> str:
        """A queue or key name under the NAMESPACE prefix (empty prefix: the name itself)."""
        return f"{self.NAMESPACE}.{base}" if self.NAMESPACE else base

    @cached_property
    def rabbitmq_url(self) -> str:
        if self.RABBITMQ_URL:
            return self.RABBITMQ_URL
        vhost = quote(self.RABBITMQ_VHOST, safe="")
        return (
            f"amqp://{quote(self.RABBITMQ_USER)}:{quote(self.RABBITMQ_PASSWORD)}"
            f"@{self.RABBITMQ_HOST}:{self.RABBITMQ_PORT}/{vhost}"
        )

    def postgres_dsn(self, dbname: str) -> str:
        """A libpq connection string for one of the two databases (or `postgres`)."""
        parts = {
            "host": self.POSTGRES_HOST,
            "port": self.POSTGRES_PORT,
            "user": self.POSTGRES_USER,
            "dbname": dbname,
        }
        if self.POSTGRES_PASSWORD:
            parts["password"] = self.POSTGRES_PASSWORD
        return " ".join(f"{k}={_libpq_quote(str(v))}" for k, v in parts.items())

    @property
    def relay_dsn(self) -> str:
        return self.postgres_dsn(self.POSTGRES_DB_RELAY)

    @property
    def assignment_dsn(self) -> str:
        return self.postgres_dsn(self.POSTGRES_DB_ASSIGNMENT)


def _libpq_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def describe_error(error: ValidationError) -> str:
    """One line naming the first variable that was refused and why."""
    first = error.errors()[0]
    variable = ".".join(str(part) for part in first["loc"]) or "settings"
    value = first.get("input")
    return f"invalid setting {variable}={value!r}: {first['msg']}"


def load_settings(**overrides) -> Settings:
    """Build the settings or exit with one clear line (status 2). Entry points call this."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        print(f"configuration error: {describe_error(error)}", file=sys.stderr)
        raise SystemExit(2) from None
