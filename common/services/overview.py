"""A region at a glance for its supervisors: who is there, and what waits.

Called by the HTTP API (GET /regions/{region}/overview), which the console's supervisor
page reads every few seconds. Read-only: one transaction, two queries, no Redis. Presence
is read from PostgreSQL's sessions (as cleanup-inactive-users reads it), so a Redis flush
never makes a region look empty.
"""

from __future__ import annotations

import psycopg

from common.domain import decisions as rules
from common.domain.routing import served_region, serving_region
from common.services.errors import Forbidden

SEVERITIES = (5, 4, 3, 2, 1)


def region_overview(conn: psycopg.Connection, actor_user: dict, region: str) -> dict:
    """The operators of an event region and its waiting events by severity.

    Only a supervisor of that region may look (a US supervisor for NA); else Forbidden.
    """
    if not _oversees(actor_user, region):
        raise Forbidden(f"region {region} is not yours to supervise")
    with conn.transaction(), conn.cursor() as cur:
        operators = _operators(cur, serving_region(region))
        waiting = _waiting_by_severity(cur, region)
    return {"region": region, "operators": operators, "waiting": waiting,
            "waiting_total": sum(row["count"] for row in waiting)}


def _oversees(actor_user: dict, region: str) -> bool:
    return (actor_user["role"] == rules.SUPERVISOR
            and served_region(actor_user["region"]) == region)


def _operators(cur, user_region: str) -> list[dict]:
    """Every operator of the user region, with their live work and whether a session of
    theirs is alive now."""
    cur.execute(
        """
        SELECT u.id, u.username, u.name, u.available,
               (SELECT count(*) FROM assignments a
                WHERE a.user_id = u.id AND a.status = 'pending' AND NOT a.deleted) AS live,
               EXISTS (SELECT 1 FROM sessions s
                       WHERE s.user_id = u.id AND s.ended_at IS NULL
                         AND s.expires_at > now()) AS present
        FROM users u
        WHERE u.role = 'operator' AND u.region = %s
        ORDER BY u.id
        """, [user_region])
    return cur.fetchall()


def _waiting_by_severity(cur, region: str) -> list[dict]:
    """One row per severity, most severe first (zero where none waits), with the moment the
    longest-waiting of them started waiting."""
    cur.execute(
        """
        SELECT severity, count(*) AS count, min(waiting_since) AS oldest_waiting_since
        FROM events
        WHERE region = %s AND waiting_since IS NOT NULL
        GROUP BY severity
        """, [region])
    found = {row["severity"]: row for row in cur.fetchall()}
    return [found.get(s, {"severity": s, "count": 0, "oldest_waiting_since": None})
            for s in SEVERITIES]
