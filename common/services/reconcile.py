"""Redis := PostgreSQL: counters and availability rebuilt from the truth.

Called at every consumer's start and by the Prefect flow reconcile-counters. Presence
(session keys) is not rebuilt here: it returns with each open console's next heartbeat,
and nobody is routed work until it does.
"""

from __future__ import annotations

import logging

import psycopg

from common.adapters import assignment_db as db
from common.adapters.presence import Presence

log = logging.getLogger(__name__)


def reconcile_counters(conn: psycopg.Connection, presence: Presence) -> dict:
    """Rewrite `user_assignments` and `active_users` from PostgreSQL; report what changed."""
    return rebuild(conn, presence)[0]


def rebuild(conn: psycopg.Connection, presence: Presence) -> tuple[dict, list[tuple]]:
    """`reconcile_counters`, also returning each corrected counter as (user id, what Redis
    had or None, what PostgreSQL holds), for the flow's report."""
    with conn.transaction(), conn.cursor() as cur:
        counts = db.live_counts(cur)
        available = db.available_operators(cur)
    before_counts, before_active = presence.counts(), presence.active_users()
    presence.replace_all(counts, available)
    drift = [(uid, before_counts.get(uid), n) for uid, n in sorted(counts.items())
             if before_counts.get(uid, 0) != n]
    report = {
        "operators": len(counts),
        "available": len(available),
        "counters_corrected": len(drift),
        "availability_corrected": len(set(before_active.items()) ^ set(available.items())),
    }
    if drift:
        log.warning("reconcile corrected %d counter(s) (user, redis, postgresql), e.g. %s",
                    len(drift), drift[:10])
    log.info("reconciled: %s", report)
    return report, drift
