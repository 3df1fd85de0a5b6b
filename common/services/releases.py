"""Releases: live work goes back to the waiting set, to be routed to someone present.

A release (expiry, inactivity, logout, a supervisor's action) soft-deletes the assignment
with its reason, lowers the operator's load row, appends history and puts the event back in
the waiting set with its original created_at and severity, all in one transaction. It never
touches relay_service, dispatch marks or dedup_events: the event simply waits again inside
assignment_service (DESIGN.md). Decided work is never released: only rows still
`pending AND NOT deleted` are taken, under a row lock.

Callers: the API (logout releases inside its own transaction with `release_users_in`), the
Prefect flows expire-assignments and cleanup-inactive-users (which route inline: they are
not requests).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

import psycopg
import redis

from common import metrics
from common.adapters import assignment_db as db
from common.adapters.presence import Presence
from common.services import assignment
from common.settings import Settings

log = logging.getLogger(__name__)

EXPIRE_BATCH = 2000
# Backfill passes after a large release: each route_waiting call assigns up to
# 20 x ASSIGNMENT_BATCH_SIZE; stop when a call assigns nothing.
MAX_ROUTE_CALLS = 50

# Called after a commit freed capacity: (why, user_id). The API's is its backfill thread.
BackfillHook = Callable[[str, int], None]


def release(conn: psycopg.Connection, presence: Presence, settings: Settings,
            assignment_ids: Sequence[int], reason: str, actor: str,
            actor_id: int | None = None, backfill: BackfillHook | None = None) -> list[dict]:
    """Release these assignments (live ones only) and route their events again.

    Returns the rows released now ({assignment_id, user_id, event_id}); a decided, already
    released or unknown id is skipped.
    """
    with conn.transaction(), conn.cursor() as cur:
        rows = db.lock_live_assignments(cur, assignment_ids)
        counts = _release_rows(cur, rows, reason, actor, actor_id)
    for row in rows:
        log.debug("event %s (assignment %s, user %s) released: %s",
                  row["event_id"], row["assignment_id"], row["user_id"], reason)
    metrics.RELEASES.labels(reason=reason).inc(len(rows))
    after_release(conn, presence, settings, counts, backfill)
    return rows


def release_user(conn: psycopg.Connection, presence: Presence, settings: Settings,
                 user_id: int, reason: str, actor: str, actor_id: int | None = None) -> int:
    """Release every live assignment of one operator (logout). Returns how many."""
    with conn.transaction(), conn.cursor() as cur:
        ids = db.live_assignment_ids(cur, [user_id])
    if not ids:
        return 0
    released = release(conn, presence, settings, ids, reason, actor, actor_id)
    log.info("user %s: %d assignment(s) released (%s)", user_id, len(released), reason)
    return len(released)


def expire_assignments(conn: psycopg.Connection, presence: Presence,
                       settings: Settings) -> dict:
    """Release live work older than ASSIGNMENT_EXPIRY_MINUTES (reason 'expired'), then route.

    Batches of EXPIRE_BATCH, each its own transaction; routing runs once at the end so the
    released events spread over everyone with capacity, each avoiding its last owner.
    """
    released, counts = 0, {}
    while True:
        with conn.transaction(), conn.cursor() as cur:
            rows = db.lock_stale_assignments(cur, settings.ASSIGNMENT_EXPIRY_MINUTES,
                                             EXPIRE_BATCH)
            counts.update(_release_rows(cur, rows, "expired", "expire-assignments", None))
        released += len(rows)
        for row in rows:
            log.debug("event %s (assignment %s, user %s) released: expired",
                      row["event_id"], row["assignment_id"], row["user_id"])
        if len(rows) < EXPIRE_BATCH:
            break
    assigned = after_release(conn, presence, settings, counts)
    report = {"released": released, "assigned": assigned}
    log.info("expire-assignments: %s", report)
    return report


def cleanup_inactive_users(conn: psycopg.Connection, presence: Presence,
                           settings: Settings) -> dict:
    """Operators with no live session lose their live work (reason 'inactive').

    One transaction: lock the candidates' users rows (id order), re-check "no live
    session" in a later statement (a fresh snapshot), make them unavailable, release their
    work and prune their Redis presence, all before the commit and under the row locks. A
    login updates the same users row, so a racing login either commits first (and its
    session is seen: nothing released) or waits, sees its work released, and writes its
    own Redis presence after this. Routing follows the commit.
    """
    with conn.transaction(), conn.cursor() as cur:
        candidates = db.inactive_operators(cur)
    with conn.transaction(), conn.cursor() as cur:
        db.lock_users(cur, candidates)
        inactive = db.inactive_operators(cur, among=candidates)
        made_unavailable = db.set_unavailable(cur, inactive)
        rows, counts = release_users_in(cur, inactive, "inactive", "cleanup-inactive-users",
                                        None)
        for user_id in inactive:
            presence.end_session(user_id)
    for user_id, n in sorted(Counter(row["user_id"] for row in rows).items()):
        log.info("user %s inactive: %d assignment(s) released", user_id, n)
    assigned = after_release(conn, presence, settings, counts)
    report = {"inactive": len(inactive), "made_unavailable": len(made_unavailable),
              "released": len(rows), "assigned": assigned}
    log.info("cleanup-inactive-users: %s", report)
    return report


def release_users_in(cur, user_ids: Sequence[int], reason: str, actor: str,
                     actor_id: int | None) -> tuple[list[dict], dict[int, int]]:
    """Release every live assignment of these operators inside the caller's transaction
    (logout, cleanup). Returns the rows released and the new live count per operator."""
    if not user_ids:
        return [], {}
    rows = db.lock_live_assignments(cur, db.live_assignment_ids(cur, user_ids))
    return rows, _release_rows(cur, rows, reason, actor, actor_id)


def _release_rows(cur, rows: list[dict], reason: str, actor: str,
                  actor_id: int | None) -> dict[int, int]:
    """Release rows already locked; returns the new live count of each operator touched.

    Lock order: assignment rows first (by the caller), then load rows in user-id order,
    as the router and decisions do, so none of them deadlock with a release.
    """
    if not rows:
        return {}
    decrements = Counter(row["user_id"] for row in rows)
    db.lock_loads(cur, sorted(decrements))
    db.mark_released(cur, rows, reason, actor, actor_id)
    return db.drop_loads(cur, dict(decrements))


def after_release(conn: psycopg.Connection, presence: Presence, settings: Settings,
                  counts: dict[int, int], backfill: BackfillHook | None = None,
                  user_id: int | None = None) -> int:
    """After commit: Redis counters := the new loads, then backfill (through `backfill`
    for the API, which returns at once: 0; else inline). Returns how many it assigned. A
    server failing here loses nothing: the events wait, and the assignment consumers'
    periodic sweep routes them."""
    if not counts:
        return 0
    try:
        presence.set_counts(counts)
    except redis.RedisError as error:
        log.warning("counters not updated after a release (%r); reconcile fixes them", error)
    if backfill is not None:
        backfill("release", user_id if user_id is not None else min(counts))
        return 0
    try:
        assigned = 0
        for _ in range(MAX_ROUTE_CALLS):
            step = assignment.route_waiting(conn, presence, settings)
            assigned += step
            if not step:
                break
        return assigned
    except (redis.RedisError, psycopg.OperationalError) as error:
        log.warning("released work not routed now (%r); it waits for the sweep", error)
        return 0

