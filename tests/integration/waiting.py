"""Helpers for the session and API tests: waiting events and what PostgreSQL holds."""

from __future__ import annotations

from common.adapters import assignment_db
from common.resources import assignment_connection
from tests import factories


def add_waiting_events(settings, count: int, region: str = "NA", severity: int = 3,
                       age_seconds: float = 0) -> list:
    """Store `count` events in assignment_service: they enter the waiting set."""
    # Each a millisecond younger than the one before: a known oldest-first order.
    events = [factories.event(region, severity, age_seconds - i / 1000) for i in range(count)]
    with assignment_connection(settings) as conn, conn.cursor() as cur:
        return assignment_db.store_events(cur, events)


def query(settings, sql: str, params=()) -> list[dict]:
    with assignment_connection(settings, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def execute(settings, sql: str, params=()) -> int:
    with assignment_connection(settings, autocommit=True) as conn:
        return conn.execute(sql, params).rowcount


def live(settings, user_id: int) -> int:
    return query(settings, "SELECT count(*) AS n FROM assignments WHERE user_id = %s "
                 "AND status = 'pending' AND NOT deleted", [user_id])[0]["n"]


def load_row(settings, user_id: int) -> int:
    return query(settings, "SELECT live FROM operator_load WHERE user_id = %s",
                 [user_id])[0]["live"]


def waiting(settings) -> int:
    return query(settings, "SELECT count(*) AS n FROM events "
                 "WHERE waiting_since IS NOT NULL")[0]["n"]


def history(settings, assignment_id: int) -> list[tuple]:
    rows = query(settings, "SELECT previous_state, new_state, reason, actor, actor_id "
                 "FROM assignment_history WHERE assignment_id = %s ORDER BY id",
                 [assignment_id])
    return [tuple(r.values()) for r in rows]
