"""`GET /metrics`: the system-wide truth in Prometheus text format, no token.

Read on scrape and reused for METRICS_CACHE_SECONDS, so any number of scrapers cost one
PostgreSQL query (waiting, live and breaching events by region, available operators by
region, unfinished outbox rows), one passive declare per queue on a kept RabbitMQ channel,
and one Redis HGETALL of the heartbeats per reading. A server that does not answer gives
no sample for what it holds and a log line, never a 500. Below them come the API's own
counters (requests, decisions, logins) and what its own work moved (releases on logout,
backfill assignments), from the process's default registry.

`install(app, settings)` is the one line create_app needs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pika.exceptions import AMQPError, ChannelClosed
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from common.adapters import broker
from common.domain.routing import EVENT_REGIONS, served_region
from common.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter()

REQUESTS = Counter("api_requests", "HTTP requests answered", ["method", "route", "status"])
DECISIONS = Counter("api_decisions", "PUT /assignments/{id} answers by outcome", ["outcome"])
LOGINS = Counter("api_logins", "POST /auth/login answers by result", ["result"])
DECISION_OUTCOMES = {200: "decided", 403: "forbidden", 404: "not_found", 409: "conflict",
                     422: "invalid", 401: "unauthorized", 503: "unavailable"}
LOGIN_RESULTS = {200: "ok", 401: "refused", 422: "invalid", 429: "locked", 503: "unavailable"}
# The processes DESIGN.md names as beating a heartbeat (the /health `processes`).
PROCESSES = ("relay", "assignment", "inbound", "ack", "deployments")
# The response target per severity, minutes (DESIGN.md's RESPONSE_TARGET_MINUTES default).
DEFAULT_TARGETS = "5=1,4=3,3=20,2=60,1=60"

_SYSTEM = """
WITH open AS (
    SELECT 'waiting' AS what, region, severity, created_at
    FROM events WHERE waiting_since IS NOT NULL
    UNION ALL
    SELECT 'live', e.region, e.severity, e.created_at
    FROM assignments a JOIN events e USING (event_id)
    WHERE a.status = 'pending' AND NOT a.deleted
)
SELECT what, region, count(*) AS n,
       count(*) FILTER (WHERE created_at < now() - make_interval(
           secs => (%(targets)s::float8[])[severity])) AS breaching
FROM open GROUP BY what, region
UNION ALL
SELECT 'available', u.region, count(*), 0 FROM users u
WHERE u.role = 'operator' AND u.available AND EXISTS (
    SELECT 1 FROM sessions s
    WHERE s.user_id = u.id AND s.ended_at IS NULL AND s.expires_at > now())
GROUP BY u.region
UNION ALL
SELECT 'outbox', NULL, count(*), 0 FROM outbox_assignments WHERE status = 'completed'
"""


def install(app: FastAPI, settings: Settings) -> None:
    """Count every request and serve /metrics. Called once by create_app."""
    app.state.system_metrics = SystemReader(settings)
    app.add_middleware(CountingMiddleware)
    app.include_router(router)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus scrapes this (deployments/prometheus/prometheus.yml)."""
    reader: SystemReader = request.app.state.system_metrics
    resources = request.app.state.resources
    snapshot = await run_in_threadpool(reader.read, resources.pool, resources.presence.client)
    system = CollectorRegistry(auto_describe=False)
    system.register(snapshot)
    body = generate_latest(system) + generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class CountingMiddleware:
    """Counts each answer by method, route template (never the raw path: ids would make a
    series each) and status; decisions and logins also by outcome."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = [500]

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            _count(scope["method"], route, status[0])


def _count(method: str, route: str, status: int) -> None:
    REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    if method == "PUT" and route == "/assignments/{assignment_id}":
        DECISIONS.labels(outcome=DECISION_OUTCOMES.get(status, "error")).inc()
    elif method == "POST" and route == "/auth/login":
        LOGINS.labels(result=LOGIN_RESULTS.get(status, "error")).inc()


@dataclass(eq=False)
class Snapshot:
    """One reading of the system, as Prometheus gauge families (a custom collector)."""

    families: list = field(default_factory=list)

    def collect(self):
        return self.families


class SystemReader:
    """Reads the system at most once per METRICS_CACHE_SECONDS, for every scraper."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.targets = _targets(getattr(settings, "RESPONSE_TARGET_MINUTES", DEFAULT_TARGETS))
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self._read_at = float("-inf")
        self._queues = QueueDepths(settings, self._lock)

    def close(self) -> None:
        """Called when the API's lifespan ends: the broker connection goes with it."""
        with self._lock:
            self._queues.shutdown()

    def read(self, pool, redis_client) -> Snapshot:
        """The cached snapshot, or a fresh one when it is older than the cache period."""
        with self._lock:
            if time.monotonic() - self._read_at >= self.settings.METRICS_CACHE_SECONDS:
                families = (self._database(pool) + self._queues.families()
                            + self._processes(redis_client))
                self._snapshot = Snapshot(families)
                self._read_at = time.monotonic()
            return self._snapshot

    def _database(self, pool) -> list:
        try:
            with pool.connection(timeout=2) as conn:
                rows = conn.execute(_SYSTEM, {"targets": self.targets}).fetchall()
        except Exception as error:  # noqa: BLE001 - a scrape never fails for a server
            log.warning("metrics: PostgreSQL not read (%s); no database samples", error)
            return []
        return _database_families(rows)

    def _processes(self, client) -> list:
        """assignment_process_up{process}: 1 while a copy beat within three periods."""
        period = float(getattr(self.settings, "HEARTBEAT_SECONDS", 5))
        try:
            beats = client.hgetall(self.settings.name("heartbeats"))
        except Exception as error:  # noqa: BLE001 - a scrape never fails for a server
            log.warning("metrics: Redis not read (%s); no process samples", error)
            return []
        up = GaugeMetricFamily("assignment_process_up",
                               "1 while a copy of the process beats (0: missing or stale)",
                               labels=["process"])
        fresh = _fresh_processes(beats, time.time() - 3 * period)
        for process in PROCESSES:
            up.add_metric([process], 1 if process in fresh else 0)
        return [up]


def _database_families(rows) -> list:
    counts = {(row["what"], row["region"]): row for row in rows}
    waiting = GaugeMetricFamily("assignment_waiting_events",
                                "Events waiting for an operator", labels=["region"])
    live = GaugeMetricFamily("assignment_live_assignments",
                             "Pending assignments (not decided, not released)", labels=["region"])
    breaching = GaugeMetricFamily(
        "assignment_events_breaching_target",
        "Undecided events older than the response target of their severity", labels=["region"])
    available = GaugeMetricFamily(
        "assignment_available_operators",
        "Operators available with a live session, by the event region they serve",
        labels=["region"])
    served: dict[str, int] = {}
    for (what, region), row in counts.items():
        if what == "available":
            key = served_region(region)
            served[key] = served.get(key, 0) + row["n"]
    for region in EVENT_REGIONS:
        w, a = counts.get(("waiting", region)), counts.get(("live", region))
        waiting.add_metric([region], w["n"] if w else 0)
        live.add_metric([region], a["n"] if a else 0)
        breaching.add_metric([region], (w["breaching"] if w else 0) + (a["breaching"] if a else 0))
        available.add_metric([region], served.get(region, 0))
    outbox = counts.get(("outbox", None))
    unfinished = GaugeMetricFamily("assignment_outbox_unfinished",
                                   "Decisions not yet acknowledged by relay_service",
                                   value=outbox["n"] if outbox else 0)
    return [waiting, live, breaching, available, unfinished]


def _fresh_processes(beats: dict, since: float) -> set[str]:
    """Names of processes with a beat newer than `since` (fields `<process>:<host>:<pid>`
    holding `{"time": unix seconds}`); anything unreadable counts as no beat."""
    fresh = set()
    for name, value in beats.items():
        try:
            if float(json.loads(value)["time"]) >= since:
                fresh.add(str(name).split(":", 1)[0])
        except (ValueError, TypeError, KeyError):
            continue
    return fresh


def _targets(spec: str) -> list[float]:
    """Seconds by severity 1..5 (a PostgreSQL array is 1-based) from `5=1,4=3,...` minutes."""
    minutes = dict(part.split("=") for part in str(spec).split(","))
    return [float(minutes[str(severity)]) * 60 for severity in range(1, 6)]


class QueueDepths:
    """Message counts of the three queues and their `.dlq`, by passive declares on one
    kept channel (opened on first use, reopened after a failure). Not thread-safe: the
    SystemReader's `lock` serialises readings, and the keeper's turns between them (a
    scrape less often than the broker's heartbeat timeout found the connection closed and
    lost that scrape's queue samples)."""

    def __init__(self, settings: Settings, lock: threading.Lock):
        self.settings = settings
        self._connection = None
        self._channel = None
        self._keeper = broker.Keeper(settings, "api-metrics-keeper", lock,
                                     lambda: self._connection, self.close)

    def families(self) -> list:
        depth = GaugeMetricFamily("assignment_queue_messages",
                                  "Messages ready in a queue (names without the namespace)",
                                  labels=["queue"])
        try:
            for base in broker.QUEUES:
                for name in (base, broker.dlq_name(base)):
                    count = self._count(name)
                    if count is not None:
                        depth.add_metric([name], count)
        except (AMQPError, OSError) as error:
            log.warning("metrics: RabbitMQ not read (%r); no queue samples", error)
            self.close()
        return [depth]

    def _count(self, base: str) -> int | None:
        """Messages in one queue; None when it does not exist (yet)."""
        channel = self._open()
        try:
            return channel.queue_declare(self.settings.name(base), passive=True).method.message_count
        except ChannelClosed:
            self._channel = None  # the broker closes the channel on a missing queue
            return None

    def _open(self):
        if self._connection is None or not self._connection.is_open:
            # The first broker address that answers (pika tries them in order).
            self._connection = broker.connect(self.settings, "api-metrics", socket_timeout=2,
                                              blocked_connection_timeout=2, stack_timeout=3)
            self._channel = None
            self._keeper.start()
        if self._channel is None or not self._channel.is_open:
            self._channel = self._connection.channel()
            # Declared as every publisher declares them (idempotent), so a queue no
            # consumer has declared yet reads as empty instead of closing the channel.
            broker.declare_queues(self._channel, self.settings)
        self._connection.process_data_events(time_limit=0)  # answers the broker's heartbeats
        return self._channel

    def shutdown(self) -> None:
        """At the API's shutdown (lock held): stop keeping the connection, and close it."""
        self._keeper.stop()
        self.close()

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(AMQPError, OSError):
                connection.close()
