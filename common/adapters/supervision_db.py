"""assignment_service queries for supervisors: one assignment's owner and region, a move,
and the audit trail (assignment_history). Functions take a cursor inside the caller's
transaction; none commits. Index use is shown by bench/bench_supervision.py.
"""

from __future__ import annotations

from datetime import datetime

HISTORY_COLUMNS = ("id", "at", "event_id", "assignment_id", "user_id", "actor_id", "actor",
                   "previous_state", "new_state", "reason")
_HISTORY = ", ".join(f"h.{c}" for c in HISTORY_COLUMNS)


def lock_assignment(cur, assignment_id: int) -> dict | None:
    """The assignment with its event's region, row-locked; None if unknown."""
    cur.execute(
        "SELECT assignment_id, user_id, event_id, status, deleted, region "
        "FROM assignments WHERE assignment_id = %s FOR UPDATE", [assignment_id])
    return cur.fetchone()


def operator_state(cur, user_id: int) -> dict | None:
    """A user with their availability and whether a session of theirs is live."""
    cur.execute(
        """
        SELECT u.id, u.username, u.role, u.region, u.available,
               EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.ended_at IS NULL
                       AND s.expires_at > now()) AS present
        FROM users u WHERE u.id = %s
        """, [user_id])
    return cur.fetchone()


def move(cur, current: dict, target_id: int, actor: str, actor_id: int) -> dict:
    """Release `current` (locked, live) with reason 'moved' and give its event to the target:
    a new pending assignment with a fresh created_at. History: the old row becomes 'moved'
    naming both owners and the new assignment; the new one starts 'pending' naming the old. The event never re-enters the waiting set. Loads are the caller's."""
    cur.execute(
        """
        WITH old AS (
            UPDATE assignments SET deleted = true, released_at = now(),
                   release_reason = 'moved', updated_at = now()
            WHERE assignment_id = %(id)s AND status = 'pending' AND NOT deleted
            RETURNING assignment_id, user_id, event_id, region, severity, rule_type, camera_id
        ), new AS (
            INSERT INTO assignments (user_id, event_id, region, severity, rule_type, camera_id)
            SELECT %(target)s, event_id, region, severity, rule_type, camera_id FROM old
            RETURNING assignment_id, user_id, event_id, created_at
        ), logged AS (
            INSERT INTO assignment_history (assignment_id, event_id, user_id, actor_id, actor,
                                            previous_state, new_state, reason)
            SELECT old.assignment_id, old.event_id, old.user_id, %(actor_id)s, %(actor)s,
                   'pending', 'moved',
                   format('moved from user %%s to user %%s (assignment %%s)',
                          old.user_id, new.user_id, new.assignment_id)
            FROM old, new
            UNION ALL
            SELECT new.assignment_id, new.event_id, new.user_id, %(actor_id)s, %(actor)s,
                   NULL, 'pending',
                   format('moved from user %%s (assignment %%s) to user %%s',
                          old.user_id, old.assignment_id, new.user_id)
            FROM old, new
        )
        SELECT assignment_id, user_id, event_id, created_at FROM new
        """,
        {"id": current["assignment_id"], "target": target_id, "actor": actor,
         "actor_id": actor_id})
    return cur.fetchone()


def story(cur, column: str, value) -> list[dict]:
    """Every history row of one assignment or one event, oldest first, with the region."""
    assert column in ("assignment_id", "event_id")
    cur.execute(
        f"SELECT {_HISTORY}, e.region FROM assignment_history h "
        f"JOIN events e ON e.event_id = h.event_id "
        f"WHERE h.{column} = %s ORDER BY h.at, h.id", [value])
    return cur.fetchall()


def event_of_assignment(cur, assignment_id: int) -> dict | None:
    cur.execute("SELECT event_id, user_id, region FROM assignments "
                "WHERE assignment_id = %s", [assignment_id])
    return cur.fetchone()


def region_of_event(cur, event_id) -> str | None:
    cur.execute("SELECT region FROM events WHERE event_id = %s", [event_id])
    row = cur.fetchone()
    return row["region"] if row else None


def region_history(cur, region: str, start: datetime, end: datetime, user_id: int | None,
                   limit: int, after: tuple[datetime, int] | None) -> list[dict]:
    """The region's history rows in [start, end), newest first, `limit` of them, strictly
    older than the cursor `after` (at, id); optionally one operator's only."""
    where = ["h.at >= %(start)s", "h.at < %(end)s", "e.region = %(region)s"]
    if user_id is not None:
        where.append("h.user_id = %(user_id)s")
    if after is not None:
        where.append("(h.at, h.id) < (%(after_at)s, %(after_id)s)")
    cur.execute(
        f"SELECT {_HISTORY} FROM assignment_history h "
        f"CROSS JOIN LATERAL (SELECT ev.region FROM events ev "
        f"WHERE ev.event_id = h.event_id OFFSET 0) e "
        f"WHERE {' AND '.join(where)} ORDER BY h.at DESC, h.id DESC LIMIT %(limit)s",
        {"start": start, "end": end, "region": region, "user_id": user_id, "limit": limit,
         "after_at": after[0] if after else None, "after_id": after[1] if after else None})
    return cur.fetchall()
