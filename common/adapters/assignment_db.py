"""assignment_service queries: the mirror, the waiting set, assignments, loads, history.

Functions take an open cursor inside the caller's transaction; none commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from psycopg.rows import tuple_row
from pydantic import TypeAdapter

from common.messages import OutboundEvent

_EVENT_COLUMNS = (
    "event_id, region, rule_type, location, severity, device_id, camera_id, "
    "frame_reference, state, created_at"
)
_EVENT_RECORD = (
    "event_id uuid, region text, rule_type text, location text, severity int, "
    "device_id text, camera_id text, frame_reference text, state text, created_at timestamptz"
)
# A batch goes to PostgreSQL as one JSON document: psycopg adapting ten Python lists cost
# about 50 microseconds per event, half the consumer's CPU; pydantic's serializer is native.
# Typed `json`, not `jsonb`: each document is read once, and json_to_recordset reads the
# text as it goes where jsonb first builds its binary form (1,000 events, round trip
# included: 4.0-4.2 µs per event against 5.1-5.5).
_EVENT_LIST = TypeAdapter(list[OutboundEvent])


def _tuples(cur, query: str, params) -> list[tuple]:
    """Run `query` and fetch its rows as tuples, whatever the cursor's row factory: for
    the router's statements that return a row per event or per operator (hundreds a batch)
    and read them at once; a dict per row cost about 1 µs each."""
    factory = getattr(cur, "row_factory", None)  # bench/queries.py's recorder has none
    cur.row_factory = tuple_row
    try:
        cur.execute(query, params)
        return cur.fetchall()
    finally:
        cur.row_factory = factory


def store_events(cur, events: Sequence[OutboundEvent]) -> list:
    """Mirror + dedup rows for events never received before; they enter the waiting set.

    Returns the ids stored now. An id already in dedup_events (a duplicate, or a late copy
    of an event decided or released long ago) changes nothing.
    """
    if not events:
        return []
    cur.execute(
        f"""
        WITH incoming AS (
            SELECT * FROM json_to_recordset(%s::json) AS t({_EVENT_RECORD})
        ), fresh AS (
            INSERT INTO dedup_events (event_id)
            SELECT DISTINCT event_id FROM incoming
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id
        )
        INSERT INTO events ({_EVENT_COLUMNS}, waiting_since)
        SELECT DISTINCT ON (i.event_id) {_EVENT_COLUMNS}, now()
        FROM incoming i JOIN fresh USING (event_id)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
        """,
        [_EVENT_LIST.dump_json(list(events)).decode()],
    )
    return [row["event_id"] for row in cur.fetchall()]


def record_received(cur, events: Sequence[OutboundEvent]) -> list[OutboundEvent]:
    """Dedup rows for events never received before. Returns those events (the first copy of
    each, in order); their mirror rows are written by `store_and_assign` in the same
    transaction. An id already in dedup_events (a duplicate, or a late copy of an event
    decided or released long ago) changes nothing."""
    if not events:
        return []
    rows = _tuples(
        cur,
        "INSERT INTO dedup_events (event_id) "
        "SELECT DISTINCT id::uuid FROM json_array_elements_text(%s::json) AS t(id) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        [json.dumps([str(event.event_id) for event in events])],
    )
    new = {event_id for (event_id,) in rows}
    fresh = []
    for event in events:
        if event.event_id in new:
            new.discard(event.event_id)
            fresh.append(event)
    return fresh


def _created_and_logged(source: str) -> str:
    """The CTEs `created` (the assignments of `picked`, with their event's columns from
    `source`) and `logged` (their history rows), for the statements that assign."""
    return f"""created AS (
            INSERT INTO assignments (user_id, event_id, region, severity, rule_type, camera_id)
            SELECT p.user_id, p.event_id, s.region, s.severity, s.rule_type, s.camera_id
            FROM picked p JOIN {source} s USING (event_id)
            RETURNING assignment_id, user_id, event_id, created_at
        ), logged AS (
            INSERT INTO assignment_history
                (assignment_id, event_id, user_id, actor, previous_state, new_state, reason)
            SELECT assignment_id, event_id, user_id, %(actor)s, NULL, 'pending', %(reason)s
            FROM created
        )"""


def store_and_assign(cur, fresh: Sequence[OutboundEvent], pairs: Sequence[tuple[int, object]],
                     actor: str, reason: str) -> list[dict]:
    """One statement: the mirror rows of `fresh` (received now: waiting, unless assigned
    here), new pending assignments (user, event) with their history rows, and the drawn
    events among them leave waiting. A fresh event assigned at once is written once, never
    waiting: no update, no lock, no entry in the waiting indexes.

    Raises if an assignment could not be made (its event neither fresh nor in the mirror):
    the load rows were already raised for it.
    """
    if not fresh and not pairs:
        return []
    cur.execute(
        f"""
        WITH incoming AS (
            SELECT * FROM json_to_recordset(%(events)s::json) AS t({_EVENT_RECORD})
        ), picked AS (
            SELECT * FROM json_to_recordset(%(pairs)s::json) AS t(user_id int, event_id uuid)
        ), stored AS (
            INSERT INTO events ({_EVENT_COLUMNS}, waiting_since)
            SELECT {_EVENT_COLUMNS}, CASE WHEN p.user_id IS NULL THEN now() END
            FROM incoming i LEFT JOIN picked p USING (event_id)
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id, region, severity, rule_type, camera_id, waiting_since
        ), source AS (
            -- rows inserted above are not visible to a scan of events in this statement
            SELECT event_id, region, severity, rule_type, camera_id
            FROM stored WHERE waiting_since IS NULL
            UNION ALL
            SELECT e.event_id, e.region, e.severity, e.rule_type, e.camera_id
            FROM events e JOIN picked p USING (event_id)
            WHERE e.waiting_since IS NOT NULL
        ), {_created_and_logged("source")}, left_waiting AS (
            UPDATE events e SET waiting_since = NULL, released_from = NULL, updated_at = now()
            FROM picked p WHERE e.event_id = p.event_id AND e.waiting_since IS NOT NULL
        )
        SELECT * FROM created
        """,
        {
            "events": _EVENT_LIST.dump_json(list(fresh)).decode(),
            "pairs": json.dumps([{"user_id": u, "event_id": str(e)} for u, e in pairs]),
            "actor": actor,
            "reason": reason,
        },
    )
    created = cur.fetchall()
    if len(created) != len(pairs):
        raise RuntimeError(f"{len(pairs) - len(created)} of {len(pairs)} assignment(s) found "
                           "no waiting or fresh event")
    return created


_DRAW = """
    SELECT event_id, region, severity, created_at, released_from,
           (%(overflow)s >= 0 AND waiting_since <= now() - make_interval(secs => %(overflow)s))
               AS overflow_due
    FROM events
    WHERE waiting_since IS NOT NULL {where}
    ORDER BY severity DESC, created_at
    LIMIT %({limit})s
    FOR UPDATE SKIP LOCKED
"""


def draw_waiting(cur, draws: Sequence[tuple[str | None, int, bool]],
                 overflow_after: int) -> list[dict]:
    """Lock waiting events, most severe then oldest, skipping locked ones: one draw per
    (region, limit, overflow_only), in one statement (one round trip), in this order.

    `region` None draws from every region; `overflow_only` only events due for overflow.
    Each draw is its own CTE so it keeps its index (events_waiting_idx by region,
    events_waiting_any_idx otherwise): PostgreSQL refuses FOR UPDATE under UNION, and
    one parameterised query would lose the region prefix. Rows of two draws may repeat.
    """
    ctes, params = [], {"overflow": overflow_after}
    for k, (region, limit, overflow_only) in enumerate(draws):
        where = ""
        if region is not None:
            where += f" AND region = %(region{k})s"
            params[f"region{k}"] = region
        if overflow_only:
            where += " AND waiting_since <= now() - make_interval(secs => %(overflow)s)"
        params[f"limit{k}"] = limit
        ctes.append(f"d{k} AS ({_DRAW.format(where=where, limit=f'limit{k}')})")
    if not ctes:
        return []
    union = " UNION ALL ".join(f"SELECT * FROM d{k}" for k in range(len(ctes)))
    cur.execute(f"WITH {', '.join(ctes)} {union}", params)
    return cur.fetchall()


def lock_loads(cur, user_ids: Sequence[int]) -> dict[int, int]:
    """Lock the load rows of these operators in user-id order (so lockers never deadlock)."""
    return dict(_tuples(
        cur,
        "SELECT user_id, live FROM operator_load WHERE user_id = ANY(%s) "
        "ORDER BY user_id FOR UPDATE",
        [list(user_ids)],
    ))


_LIVE_SESSION = (
    "EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id "
    "AND s.ended_at IS NULL AND s.expires_at > now())"
)


def lock_routable_loads(cur, user_ids: Sequence[int]) -> dict[int, int]:
    """The router's guard: lock the load rows of those among these users whom PostgreSQL
    lets receive work now: operators, available, with a live session.

    Their users rows are share-locked first (id order; logout and cleanup lock them for
    update before they release), so a logout or cleanup committing meanwhile is seen: the
    row is re-checked after the wait and refused. Then the load rows, in id order.
    """
    routable = lock_routable_users(cur, user_ids)
    return lock_loads(cur, routable) if routable else {}


def lock_routable_users(cur, user_ids: Sequence[int]) -> list[int]:
    """The first half of that guard (also a supervisor's move): share-lock, in id order,
    the users rows of those who may receive work now, and return their ids."""
    rows = _tuples(
        cur,
        f"SELECT u.id FROM users u WHERE u.id = ANY(%s) AND u.role = 'operator' "
        f"AND u.available AND {_LIVE_SESSION} ORDER BY u.id FOR SHARE",
        [list(user_ids)],
    )
    return [user_id for (user_id,) in rows]


def add_load(cur, increments: dict[int, int], cap: int) -> dict[int, int]:
    """Guarded increment: a row that would pass the cap is not changed. Returns new lives."""
    return dict(_tuples(
        cur,
        """
        UPDATE operator_load AS l
        SET live = l.live + v.n, last_assigned_at = now()
        FROM unnest(%s::int[], %s::int[]) AS v(user_id, n)
        WHERE l.user_id = v.user_id AND l.live + v.n <= %s
        RETURNING l.user_id, l.live
        """,
        [list(increments), list(increments.values()), cap],
    ))


def insert_assignments(cur, pairs: Sequence[tuple[int, object]], actor: str, reason: str) -> list[dict]:
    """New pending assignments (user, event), their history rows; events leave waiting."""
    cur.execute(
        f"""
        WITH picked AS (
            SELECT * FROM json_to_recordset(%(pairs)s::json) AS t(user_id int, event_id uuid)
        ), {_created_and_logged("events")}, left_waiting AS (
            UPDATE events e SET waiting_since = NULL, released_from = NULL, updated_at = now()
            FROM picked p WHERE e.event_id = p.event_id
        )
        SELECT * FROM created
        """,
        {
            "pairs": json.dumps([{"user_id": u, "event_id": str(e)} for u, e in pairs]),
            "actor": actor,
            "reason": reason,
        },
    )
    return cur.fetchall()


def live_counts(cur, user_ids: Sequence[int] | None = None) -> dict[int, int]:
    """PostgreSQL's live count per operator (the load rows)."""
    if user_ids is None:
        cur.execute("SELECT user_id, live FROM operator_load")
    else:
        cur.execute(
            "SELECT user_id, live FROM operator_load WHERE user_id = ANY(%s)", [list(user_ids)]
        )
    return {row["user_id"]: row["live"] for row in cur.fetchall()}


def available_operators(cur) -> dict[int, str]:
    """Operators marked available (PostgreSQL's truth for active_users): id -> region."""
    cur.execute("SELECT id, region FROM users WHERE role = 'operator' AND available")
    return {row["id"]: row["region"] for row in cur.fetchall()}


# ---- releases (common/services/releases.py) ---------------------------------------------

_LIVE = "status = 'pending' AND NOT deleted"


def lock_live_assignments(cur, assignment_ids: Sequence[int]) -> list[dict]:
    """Lock the live rows among `assignment_ids`, in id order (decided or released: skipped)."""
    cur.execute(
        f"SELECT assignment_id, user_id, event_id FROM assignments "
        f"WHERE assignment_id = ANY(%s) AND {_LIVE} ORDER BY assignment_id FOR UPDATE",
        [list(assignment_ids)],
    )
    return cur.fetchall()


def lock_stale_assignments(cur, older_than_minutes: float, limit: int) -> list[dict]:
    """Lock up to `limit` live assignments created longer ago than the expiry, oldest first.

    SKIP LOCKED: a row a decision (or another expiry run) holds now is left to it.
    """
    cur.execute(
        f"SELECT assignment_id, user_id, event_id FROM assignments "
        f"WHERE {_LIVE} AND created_at < now() - make_interval(secs => %s) "
        f"ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
        [older_than_minutes * 60, limit],
    )
    return cur.fetchall()


def live_assignment_ids(cur, user_ids: Sequence[int]) -> list[int]:
    cur.execute(
        f"SELECT assignment_id FROM assignments WHERE user_id = ANY(%s) AND {_LIVE}",
        [list(user_ids)],
    )
    return [row["assignment_id"] for row in cur.fetchall()]


def mark_released(cur, rows: Sequence[dict], reason: str, actor: str,
                  actor_id: int | None) -> None:
    """Soft-delete locked live rows, append their history, put their events back waiting.

    The event keeps its created_at and severity (its place in the waiting order); only
    waiting_since restarts and released_from names the operator routing should avoid.
    """
    cur.execute(
        """
        WITH released AS (
            UPDATE assignments
            SET deleted = true, released_at = now(), release_reason = %(reason)s,
                updated_at = now()
            WHERE assignment_id = ANY(%(ids)s) AND status = 'pending' AND NOT deleted
            RETURNING assignment_id, user_id, event_id
        ), logged AS (
            INSERT INTO assignment_history (assignment_id, event_id, user_id, actor_id, actor,
                                            previous_state, new_state, reason)
            SELECT assignment_id, event_id, user_id, %(actor_id)s, %(actor)s,
                   'pending', 'released', %(reason)s
            FROM released
        )
        UPDATE events e
        SET waiting_since = now(), released_from = r.user_id, updated_at = now()
        FROM released r
        WHERE e.event_id = r.event_id
        """,
        {"ids": [row["assignment_id"] for row in rows], "reason": reason,
         "actor": actor, "actor_id": actor_id},
    )


def drop_loads(cur, decrements: dict[int, int]) -> dict[int, int]:
    """Lower several load rows at once (rows already locked). Returns the new lives."""
    cur.execute(
        """
        UPDATE operator_load AS l SET live = l.live - v.n
        FROM unnest(%s::int[], %s::int[]) AS v(user_id, n)
        WHERE l.user_id = v.user_id
        RETURNING l.user_id, l.live
        """,
        [list(decrements), list(decrements.values())],
    )
    return {row["user_id"]: row["live"] for row in cur.fetchall()}


def inactive_operators(cur, among: Sequence[int] | None = None) -> list[int]:
    """Operators with no live session (not ended, not expired), by PostgreSQL's clock;
    only those `among` these ids when given (cleanup's re-check under the row locks)."""
    cur.execute(
        f"""
        SELECT u.id FROM users u
        WHERE u.role = 'operator' AND NOT {_LIVE_SESSION}
          AND (%(among)s::int[] IS NULL OR u.id = ANY(%(among)s))
        ORDER BY u.id
        """,
        {"among": None if among is None else list(among)},
    )
    return [row["id"] for row in cur.fetchall()]


def lock_users(cur, user_ids: Sequence[int]) -> None:
    """Lock these users rows for update, in id order (logout, cleanup: before releasing)."""
    cur.execute("SELECT id FROM users WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                [list(user_ids)])


def set_unavailable(cur, user_ids: Sequence[int]) -> list[int]:
    cur.execute(
        "UPDATE users SET available = false, updated_at = now() "
        "WHERE id = ANY(%s) AND available RETURNING id",
        [list(user_ids)],
    )
    return [row["id"] for row in cur.fetchall()]
