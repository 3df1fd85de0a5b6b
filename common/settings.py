"""Every knob of the system, read from the environment (and `.env`).

One class, validated at start: a nonsense value stops the process with one line naming the
variable (see `load_settings`). Names follow the system this one replaces.
"""

from __future__ import annotations

import sys
from functools import cached_property
from typing import Literal
from urllib.parse import quote, urlsplit

from croniter import croniter
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The console's secret when none is configured: fine on a laptop, refused in production.
DEV_CONSOLE_SECRET = "development-console-secret"
CRON_FIELDS = ("INACTIVE_USER_CRON", "EXPIRED_EVENT_CRON", "CHECK_REVIEWED_CRON", "PRUNE_CRON")


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
    # Overrides the five above: one URL, or several comma-separated (the nodes of a
    # cluster), which every client tries in order when it connects or reconnects.
    RABBITMQ_URL: str | None = None
    # Quorum queues' delivery limit: a message that crashes its consumer this many times
    # more is dead-lettered by the broker itself.
    RABBITMQ_DELIVERY_LIMIT: int = Field(5, ge=1, le=1000)
    # AMQP heartbeat every client asks for: a connection silent for twice this long is
    # closed by the broker (and by pika), so a dead peer is noticed within a minute.
    RABBITMQ_HEARTBEAT_SECONDS: int = Field(30, ge=1, le=600)

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
    # Back-off of re-dispatch: the wait doubles per dispatch from REDISPATCH_AFTER_SECONDS,
    # up to this (6 h): an hour with the assignment consumers down costs ~4 re-publishes.
    REDISPATCH_MAX_SECONDS: int = Field(21_600, ge=1)
    # Outbox sweep publishes rows whose last publish is older than this.
    OUTBOX_REPUBLISH_SECONDS: int = Field(60, ge=0)

    ASSIGNMENT_BATCH_SIZE: int = Field(1000, ge=1, le=10_000)
    # Periodic backfill sweep inside each assignment consumer; 0 switches it off.
    BACKFILL_SWEEP_SECONDS: float = Field(5.0, ge=0)

    # Message bodies larger than this are dead-lettered unread (kind too_large).
    MESSAGE_MAX_BYTES: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)

    GENERATE_MAX_COUNT: int = Field(1_000_000, ge=1)

    API_HOST: str = "0.0.0.0"
    API_PORT: int = Field(3000, ge=1, le=65535)
    CONSOLE_PORT: int = Field(3001, ge=1, le=65535)
    API_URL: str = "http://localhost:3000"
    LOGIN_MAX_FAILURES: int = Field(5, ge=1)
    LOGIN_LOCKOUT_SECONDS: int = Field(60, ge=1)

    # Supervision: every long-running process beats this often; stale after three misses.
    HEARTBEAT_SECONDS: float = Field(5.0, ge=0.5, le=300)
    # Where a process writes the file whose age `python -m consumers healthcheck` reads.
    HEARTBEAT_DIR: str = Field("/tmp/event-assignment-heartbeats", min_length=1)
    # The port `make up` runs the Prefect server (UI and API) on.
    PREFECT_PORT: int = Field(4200, ge=1, le=65535)
    # Request path: the hard maximum age of a session, and each API worker's database pool
    # (its size is also how many requests may hold a connection at once; see decisions.md).
    SESSION_MAX_HOURS: float = Field(12, gt=0, le=24 * 31)
    API_DB_POOL_SIZE: int = Field(20, ge=1, le=500)
    API_DB_POOL_TIMEOUT: float = Field(5.0, gt=0, le=300)

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Observability: log lines as text or JSON; each consumer's Prometheus port (unset: the
    # process's own default, 0: no metrics); how long the API's /metrics reuses its reading.
    LOG_FORMAT: Literal["text", "json"] = "text"
    METRICS_PORT: int | None = Field(None, ge=0, le=65535)
    METRICS_HOST: str = "0.0.0.0"
    METRICS_CACHE_SECONDS: float = Field(2.0, ge=0, le=60)

    # Operations: dead-letter queue length (a policy, drop-head) and the retention job.
    DLQ_MAX_LENGTH: int = Field(100_000, ge=1, le=100_000_000)
    RETENTION_DAYS: int = Field(90, ge=1, le=36_500)
    RETENTION_BATCH_SIZE: int = Field(5000, ge=1, le=100_000)
    PRUNE_CRON: str = "30 3 * * *"
    # Supervision and console: response target per severity ("5=1,4=3,..." in minutes),
    # and the frame link of the console.
    RESPONSE_TARGET_MINUTES: str = "5=1,4=3,3=20,2=60,1=60"
    FRAME_URL_TEMPLATE: str = Field("", max_length=2000)
    # Security (docs/decisions.md, "Security model"): production start checks, the console's
    # shared secret, the API's body limit, password length, server passwords and TLS.
    APP_ENV: Literal["development", "production"] = "development"
    CONSOLE_SECRET: str = Field(DEV_CONSOLE_SECRET, min_length=1, max_length=1000)
    API_MAX_BODY_BYTES: int = Field(1_048_576, ge=1024, le=1 << 30)
    PASSWORD_MIN_LENGTH: int = Field(12, ge=8, le=1000)
    REDIS_PASSWORD: str = ""
    # Overrides REDIS_HOST/PORT/DB/PASSWORD; `rediss://` connects with TLS.
    REDIS_URL: str | None = Field(None, pattern=r"^(redis|rediss|unix)://")
    POSTGRES_SSLMODE: Literal["disable", "allow", "prefer", "require", "verify-ca",
                              "verify-full"] | None = None

    @field_validator(*CRON_FIELDS)
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"not a valid cron expression: {value!r}")
        return value

    @model_validator(mode="after")
    def _redispatch_cap_above_start(self):
        if self.REDISPATCH_MAX_SECONDS < self.REDISPATCH_AFTER_SECONDS:
            raise ValueError("REDISPATCH_MAX_SECONDS must be at least REDISPATCH_AFTER_SECONDS")
        return self

    @field_validator("RESPONSE_TARGET_MINUTES")
    @classmethod
    def _targets_parse(cls, value: str) -> str:
        parse_targets(value)
        return value

    @field_validator("FRAME_URL_TEMPLATE")
    @classmethod
    def _frame_template(cls, value: str) -> str:
        if value and (not value.startswith(("http://", "https://"))
                      or "{frame_reference}" not in value):
            raise ValueError("must be an http(s) URL containing {frame_reference}, or empty")
        return value

    @cached_property
    def response_targets(self) -> dict[int, float]:
        """Minutes to a decision per severity, 5 to 1."""
        return parse_targets(self.RESPONSE_TARGET_MINUTES)

    @field_validator("RABBITMQ_URL")
    @classmethod
    def _amqp_urls(cls, value: str | None) -> str | None:
        if value:
            split_amqp_urls(value)
        return value

    # ---- derived names -------------------------------------------------------------

    def name(self, base: str) -> str:
        """A queue or key name under the NAMESPACE prefix (empty prefix: the name itself)."""
        return f"{self.NAMESPACE}.{base}" if self.NAMESPACE else base

    @property
    def rabbitmq_urls(self) -> tuple[str, ...]:
        """The broker addresses in the order clients try them: each item of RABBITMQ_URL
        (comma-separated, e.g. the nodes of a cluster), else one URL from the RABBITMQ_*
        parts. Not cached: `model_copy(update=...)` would carry a cached value over."""
        if self.RABBITMQ_URL:
            return split_amqp_urls(self.RABBITMQ_URL)
        vhost = quote(self.RABBITMQ_VHOST, safe="")
        return (
            f"amqp://{quote(self.RABBITMQ_USER)}:{quote(self.RABBITMQ_PASSWORD)}"
            f"@{self.RABBITMQ_HOST}:{self.RABBITMQ_PORT}/{vhost}",
        )

    @property
    def rabbitmq_url(self) -> str:
        """The first broker address (where one address is enough, e.g. naming the host)."""
        return self.rabbitmq_urls[0]

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
        if self.POSTGRES_SSLMODE:
            parts["sslmode"] = self.POSTGRES_SSLMODE
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


def split_amqp_urls(value: str) -> tuple[str, ...]:
    """'amqp://a/, amqps://b/' -> ('amqp://a/', 'amqps://b/'). Every item must be an
    amqp:// or amqps:// (TLS) URL with a usable port; the message names the item by its
    position, never by its text (it may hold a password)."""
    items = tuple(item.strip() for item in value.split(","))
    for position, item in enumerate(items, start=1):
        where = f"item {position} of {len(items)}" if len(items) > 1 else "the URL"
        if not item:
            raise ValueError(f"{where} is empty (a stray comma?)")
        scheme = item.partition("://")[0].lower() if "://" in item else ""
        if scheme not in ("amqp", "amqps"):
            raise ValueError(f"{where} must start with amqp:// or amqps:// (TLS), "
                             f"not {scheme + '://' if scheme else 'no scheme'}")
        try:
            port = urlsplit(item).port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError(f"{where} has a port that is not a number from 1 to 65535")
    return items


def parse_targets(value: str) -> dict[int, float]:
    """'5=1,4=3,3=20,2=60,1=60' -> {5: 1.0, ...}; every severity 1-5 once, minutes > 0."""
    targets = {}
    for part in value.split(","):
        severity, sep, minutes = part.strip().partition("=")
        if not sep or severity.strip() not in {"1", "2", "3", "4", "5"}:
            raise ValueError(f"expected severity=minutes for severities 1-5, got {part!r}")
        try:
            number = float(minutes)
        except ValueError:
            raise ValueError(f"minutes must be a number, got {minutes!r}") from None
        if not 0 < number <= 7 * 24 * 60:
            raise ValueError(f"minutes must be above 0 and at most a week, got {minutes!r}")
        targets[int(severity)] = number
    if sorted(targets) != [1, 2, 3, 4, 5]:
        raise ValueError("every severity 1-5 needs a target")
    return dict(sorted(targets.items(), reverse=True))


def describe_error(error: ValidationError) -> str:
    """One line naming the first variable that was refused and why."""
    first = error.errors()[0]
    variable = ".".join(str(part) for part in first["loc"]) or "settings"
    if variable.endswith(("PASSWORD", "SECRET", "_URL")):
        # May carry a credential (a password, or one inside a URL): name it, never show it.
        return f"invalid setting {variable} (value not shown): {first['msg']}"
    return f"invalid setting {variable}={first.get('input')!r}: {first['msg']}"


def load_settings(**overrides) -> Settings:
    """Build the settings or exit with one clear line (status 2). Entry points call this."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        print(f"configuration error: {describe_error(error)}", file=sys.stderr)
        raise SystemExit(2) from None
