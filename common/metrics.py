"""What each process counts, in Prometheus terms, and the port it serves them on.

The names are DESIGN.md's (Operations). A process counts only what it did itself; the
system-wide truth (waiting events, live assignments, queue depths) is read by the API's
`/metrics` (common/api/metrics.py). Each long-running consumer calls `serve(process,
settings)` once at start:

| process    | port | what it moves                                                      |
|------------|------|--------------------------------------------------------------------|
| relay      | 9101 | events_relayed_total                                               |
| assignment | 9102 | events_assigned_total, event_insert_to_assigned_seconds            |
| inbound    | 9103 | decisions_viewed_total{decision}, decision_to_viewed_seconds       |
| ack        | 9104 | outbox_finished_total                                              |
| every one  |      | messages_dead_lettered_total{queue,reason} (reason: the BadMessage |
|            |      | kind, a short closed set)                                          |
| api        | 3000 | releases_total{reason} (logout, supervisor), api_* counters        |

Assignments made by a backfill inside the API (after a login or a decision) are counted by
the API's own `/metrics` under the same names.
"""

from __future__ import annotations

import errno
import logging

from prometheus_client import Counter, Histogram, disable_created_metrics, start_http_server

from common.settings import Settings

log = logging.getLogger(__name__)

# No `*_created` series beside each counter: they double every page and no rule reads them.
disable_created_metrics()

PORTS = {"relay": 9101, "assignment": 9102, "inbound": 9103, "ack": 9104}
# From 1 ms to 60 s: a quiet system assigns within milliseconds; an event nobody can take
# waits for minutes, which the last bucket (and +Inf) still shows.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

EVENTS_RELAYED = Counter("events_relayed", "Events published to events.outbound and confirmed")
EVENTS_ASSIGNED = Counter("events_assigned", "Assignments created by routing")
DEAD_LETTERED = Counter("messages_dead_lettered", "Messages moved to a .dlq by this process",
                        ["queue", "reason"])
DECISIONS_VIEWED = Counter("decisions_viewed",
                           "Decisions applied to relay_service.events for the first time",
                           ["decision"])
DEAD_LETTERS_DROPPED = Counter(
    "dead_letters_dropped_total",
    "Dead letters pushed out of a full .dlq by its length limit (drop-head), estimated",
    ["queue"])
OUTBOX_FINISHED = Counter("outbox_finished", "Outbox rows marked finished by an ack")
RELEASES = Counter("releases", "Live assignments released back to waiting", ["reason"])
INSERT_TO_ASSIGNED = Histogram(
    "event_insert_to_assigned_seconds",
    "From the source event's created_at to its assignment (each assignment, releases too)",
    buckets=BUCKETS)
DECISION_TO_VIEWED = Histogram(
    "decision_to_viewed_seconds",
    "From an operator's decision to the source event marked Viewed",
    buckets=BUCKETS)


def port_for(process: str, settings: Settings) -> int:
    """METRICS_PORT when set (0: off), else the process's own default port (0 if none)."""
    if settings.METRICS_PORT is not None:
        return settings.METRICS_PORT
    return PORTS.get(process, 0)


def serve(process: str, settings: Settings) -> int:
    """Serve this process's metrics over HTTP (a daemon thread); returns the port, 0 if none.

    Called once by `python -m consumers NAME`. A port already taken (a second copy on the
    same machine) is one log line, and the process runs on without metrics.
    """
    port = port_for(process, settings)
    if not port:
        log.info("%s: metrics off (METRICS_PORT=0)", process)
        return 0
    try:
        start_http_server(port, addr=settings.METRICS_HOST)
    except OSError as error:
        why = ("is taken (another copy on this machine?)" if error.errno == errno.EADDRINUSE
               else f"cannot be opened ({error.strerror})")
        log.warning("%s: metrics port %s %s; running without metrics (METRICS_PORT sets "
                    "another)", process, port, why)
        return 0
    log.info("%s: metrics on http://%s:%s/metrics", process, settings.METRICS_HOST, port)
    return port


def observe_since(histogram: Histogram, now: float, moments) -> None:
    """One observation per moment (aware datetimes; None skipped): `now` minus it, in s."""
    for moment in moments:
        if moment is not None:
            histogram.observe(max(0.0, now - moment.timestamp()))
