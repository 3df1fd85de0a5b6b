"""A region's numbers for its supervisors: now, response times, outcomes, breaches, series.

Called by the HTTP API (GET /regions/{region}/metrics and /now). Read-only, one REPEATABLE READ
transaction so every number describes the same moment; the SQL is in
common/adapters/analytics_db.py.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from common.adapters import analytics_db as q
from common.domain.routing import serving_region
from common.services.errors import Forbidden
from common.services.supervision import oversees
from common.settings import Settings

BREACH_LIMIT = 100
TOP_LIMIT = 20


def region_metrics(conn: psycopg.Connection, settings: Settings, actor_user: dict,
                   region: str, start: datetime, end: datetime) -> dict:
    """Everything the supervisor page shows for [start, end), for a supervisor of `region`."""
    if not oversees(actor_user, region):
        raise Forbidden(f"region {region} is not yours to supervise")
    targets = settings.response_targets
    params = {"region": region, "user_region": serving_region(region), "start": start,
              "end": end, "limit": BREACH_LIMIT,
              "targets": [targets[s] for s in (1, 2, 3, 4, 5)]}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        out = {name: q.run(cur, name, params) for name in
               ("time_to_assign", "time_to_decide", "decisions", "releases", "breaches",
                "events_per_minute", "decisions_per_minute", "activity")}
        out["breach_count"] = q.run(cur, "breach_count", params)[0]["count"]
        out["now"] = q.run(cur, "now", params)[0]
        top = params | {"limit": TOP_LIMIT}
        out["by_rule_type"] = _rates(q.run(cur, "by_rule_type", top))
        out["by_camera"] = _rates(q.run(cur, "by_camera", top))
    return {"region": region, "from": start, "to": end,
            "max_assignments": settings.MAX_ASSIGNMENTS,
            "response_target_minutes": {str(s): m for s, m in targets.items()}, **out}


def region_now(conn: psycopg.Connection, settings: Settings, actor_user: dict,
               region: str) -> dict:
    """The region this moment (waiting, oldest wait, live work, operators' last activity),
    for a supervisor of `region`; the supervisor page's "Now" panel polls it."""
    if not oversees(actor_user, region):
        raise Forbidden(f"region {region} is not yours to supervise")
    params = {"region": region, "user_region": serving_region(region)}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        now = q.run(cur, "now", params)[0]
        activity = q.run(cur, "activity", params)
    return {"region": region, "max_assignments": settings.MAX_ASSIGNMENTS, **now,
            "activity": activity}


def _rates(rows: list[dict]) -> list[dict]:
    return [row | {"approval_rate": row["approved"] / row["decided"],
                   "false_alarm_rate": row["false_alarms"] / row["decided"]}
            for row in rows]
