"""assignment_service read queries for a region's response times, outcomes and series.

Each reads one region's rows of one time range through an index, never a lookup per row:
events (region, created_at); assignments (region, decided_at), (region, released_at) and
(region, created_at), since an assignment carries its event's region, severity, rule type
and camera (sql/assignment_service/030). Where a query pairs events with their
assignments (time to assign, breaches), both sides are read by range and hash-joined: an
assignment is made and decided after its event's source time, so the assignments of
events created since `start` are among those created (decided) since `start`.
Percentiles are percentile_cont, per-minute series date_bin. Called by
common/services/analytics.py; plans and timings at a million rows:
bench/bench_supervision.py.
"""

from __future__ import annotations

REASONS = ["false_alarm", "duplicate", "handled_on_site", "other"]

# Older free-text reasons count as 'other' (DESIGN.md); a rejection without one as none.
_REASON = """CASE WHEN a.decision_reason IS NULL THEN NULL
                  WHEN a.decision_reason = ANY(%(reasons)s) THEN a.decision_reason
                  ELSE 'other' END"""

_DECIDED = """FROM assignments a
              WHERE a.region = %(region)s
                AND a.decided_at >= %(start)s AND a.decided_at < %(end)s"""


def _rates_by(column: str) -> str:
    """Decisions, approvals and false alarms per rule type or camera, top `limit`."""
    assert column in ("rule_type", "camera_id")
    return f"""
        SELECT a.{column} AS key, count(*) AS decided,
               count(*) FILTER (WHERE a.status = 'approved') AS approved,
               count(*) FILTER (WHERE a.status = 'rejected'
                                AND a.decision_reason = 'false_alarm') AS false_alarms
        {_DECIDED}
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %(limit)s"""


# An event's decision, for events created since `start` (see the module's docstring).
_DECISION = """LEFT JOIN assignments d ON d.event_id = e.event_id AND d.status <> 'pending'
                   AND d.region = %(region)s AND d.decided_at >= %(start)s"""

QUERIES = {
    "time_to_assign": """
        SELECT e.severity, count(*) AS count,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.first_at - e.created_at)) AS p50_seconds,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM f.first_at - e.created_at)) AS p95_seconds
        FROM events e
        JOIN (SELECT a.event_id, min(a.created_at) AS first_at FROM assignments a
              WHERE a.region = %(region)s AND a.created_at >= %(start)s
              GROUP BY a.event_id) f ON f.event_id = e.event_id
        WHERE e.region = %(region)s AND e.created_at >= %(start)s AND e.created_at < %(end)s
        GROUP BY e.severity ORDER BY e.severity DESC""",
    "time_to_decide": f"""
        SELECT a.severity, count(*) AS count,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.decided_at - a.created_at)) AS p50_seconds,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM a.decided_at - a.created_at)) AS p95_seconds
        {_DECIDED}
        GROUP BY a.severity ORDER BY a.severity DESC""",
    "decisions": f"""
        SELECT a.status AS outcome, {_REASON} AS reason, count(*) AS count
        {_DECIDED}
        GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST""",
    "releases": """
        SELECT a.release_reason AS reason, count(*) AS count
        FROM assignments a
        WHERE a.region = %(region)s
          AND a.released_at >= %(start)s AND a.released_at < %(end)s
        GROUP BY 1 ORDER BY 2 DESC, 1""",
    "breaches": f"""
        SELECT e.event_id, e.severity, e.rule_type, e.camera_id, e.location, e.created_at,
               d.decided_at, d.status AS outcome,
               (%(targets)s::float8[])[e.severity] AS target_minutes,
               extract(epoch FROM coalesce(d.decided_at, now()) - e.created_at)
                   - 60 * (%(targets)s::float8[])[e.severity] AS over_seconds
        FROM events e
        {_DECISION}
        WHERE e.region = %(region)s AND e.created_at >= %(start)s AND e.created_at < %(end)s
          AND coalesce(d.decided_at, now())
              > e.created_at + make_interval(secs => 60 * (%(targets)s::float8[])[e.severity])
        ORDER BY over_seconds DESC LIMIT %(limit)s""",
    "breach_count": f"""
        SELECT count(*) AS count
        FROM events e
        {_DECISION}
        WHERE e.region = %(region)s AND e.created_at >= %(start)s AND e.created_at < %(end)s
          AND coalesce(d.decided_at, now())
              > e.created_at + make_interval(secs => 60 * (%(targets)s::float8[])[e.severity])""",
    "events_per_minute": """
        SELECT date_bin('1 minute', e.created_at, %(start)s) AS minute, e.severity,
               count(*) AS count
        FROM events e
        WHERE e.region = %(region)s AND e.created_at >= %(start)s AND e.created_at < %(end)s
        GROUP BY 1, 2 ORDER BY 1, 2 DESC""",
    "decisions_per_minute": f"""
        SELECT date_bin('1 minute', a.decided_at, %(start)s) AS minute, a.status AS outcome,
               count(*) AS count
        {_DECIDED}
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "by_rule_type": _rates_by("rule_type"),
    "by_camera": _rates_by("camera_id"),
    "now": """
        SELECT (SELECT count(*) FROM events
                WHERE region = %(region)s AND waiting_since IS NOT NULL) AS waiting,
               (SELECT min(waiting_since) FROM events
                WHERE region = %(region)s AND waiting_since IS NOT NULL) AS oldest_waiting_since,
               (SELECT count(*) FROM assignments a
                WHERE a.region = %(region)s AND a.status = 'pending' AND NOT a.deleted)
                   AS live_assignments""",
    "activity": """
        SELECT u.id AS user_id, max(s.last_seen_at) AS last_seen_at
        FROM users u LEFT JOIN sessions s ON s.user_id = u.id
        WHERE u.role = 'operator' AND u.region = %(user_region)s
        GROUP BY u.id ORDER BY u.id""",
}


def run(cur, name: str, params: dict) -> list[dict]:
    """Rows of one named query; `params` holds region, user_region, start, end, targets
    (minutes by severity, index 1-5), limit."""
    cur.execute(QUERIES[name], {"reasons": REASONS, **params})
    return cur.fetchall()
