"""Test data for the engine: events, synthetic operators, presence. Real servers only."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from common.adapters.presence import Presence
from common.messages import OutboundEvent

_rng = random.Random(7)


def event(region: str = "NA", severity: int = 3, age_seconds: float = 0.0,
          event_id: uuid.UUID | None = None) -> OutboundEvent:
    """An event as the assignment consumer receives it."""
    n = _rng.randint(1, 10_000)
    return OutboundEvent(
        event_id=event_id or uuid.uuid4(),
        region=region,
        rule_type="motion_detection",
        location="lobby",
        severity=severity,
        device_id=f"device_{n}",
        camera_id=f"camera_{n}",
        frame_reference=f"frame_{uuid.uuid4().hex}",
        created_at=datetime.now(UTC) - timedelta(seconds=age_seconds),
        state="Not Viewed",
    )


def message(e: OutboundEvent) -> dict:
    """The events.outbound JSON of an event (camelCase, as the relay publishes it)."""
    return e.model_dump(mode="json", by_alias=True)


def add_operators(conn, count: int, region: str = "US", first_id: int = 1000) -> list[int]:
    """Synthetic operators (with load rows), not yet available."""
    ids = list(range(first_id, first_id + count))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO users (id, username, name, role, region, password_hash)
            SELECT id, 'op' || id, 'Operator ' || id, 'operator', %s, 'x'
            FROM unnest(%s::int[]) AS id
            """,
            [region, ids],
        )
        cur.execute("INSERT INTO operator_load (user_id) SELECT unnest(%s::int[])", [ids])
    return ids


def make_available(conn, presence: Presence, user_ids, ttl: int | None = None) -> None:
    """What a login does: available in PostgreSQL and Redis, a live session row (ttl, or
    an hour) and the session key alive. PostgreSQL refuses work to anyone without both."""
    user_ids = list(user_ids)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "UPDATE users SET available = true WHERE id = ANY(%s) RETURNING id, region",
            [user_ids],
        )
        regions = {row["id"]: row["region"] for row in cur.fetchall()}
        cur.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at) "
            "SELECT sha256(convert_to(gen_random_uuid()::text, 'UTF8')), id, "
            "now() + make_interval(secs => %s) "
            "FROM unnest(%s::int[]) AS id",
            [ttl or 3600, user_ids],
        )
    for user_id in user_ids:
        presence.touch_session(user_id, ttl)
        presence.set_available(user_id, regions[user_id])


def live_by_user(conn) -> dict[int, int]:
    rows = conn.execute(
        "SELECT user_id, count(*) AS n FROM assignments "
        "WHERE status = 'pending' AND NOT deleted GROUP BY user_id"
    ).fetchall()
    return {row["user_id"]: row["n"] for row in rows}


def waiting_count(conn) -> int:
    return conn.execute(
        "SELECT count(*) AS n FROM events WHERE waiting_since IS NOT NULL"
    ).fetchone()["n"]
