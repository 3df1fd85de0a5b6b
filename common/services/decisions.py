"""Operators' (and supervisors') decisions on assignments, and the list of live work.

Called by the HTTP API. A decision is a read, then one statement that is its own
transaction: the assignment, the load row, a history row and the outbox row change
together, guarded by what was read; then the Redis counter follows and the
freed capacity is backfilled: by the caller's `backfill` hook (the API's backfill thread),
or inline when there is none. Relaying the outbox row is the review loop's job
(common/services/outbox.py); the API hands it to its fast-path thread after this returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
import redis

from common.adapters.presence import Presence
from common.domain import decisions as rules
from common.resources import one_statement
from common.services import assignment
from common.services.errors import Conflict, Forbidden, NotFound
from common.services.releases import BackfillHook
from common.settings import Settings

log = logging.getLogger(__name__)

# Reads and guarded writes before a decision that keeps meeting a changed assignment is
# refused (each retry needs another request to have changed it in between).
_ATTEMPTS = 3

_ASSIGNMENT_FIELDS = """
    a.assignment_id, a.user_id, a.event_id, a.status, a.deleted, a.created_at, a.updated_at,
    a.decided_at, a.decided_by, a.decision_reason, a.decision_note,
    a.released_at, a.release_reason,
    e.region, e.rule_type, e.location, e.severity, e.device_id, e.camera_id,
    e.frame_reference, e.state, e.created_at AS event_created_at
"""


def decide(conn: psycopg.Connection, presence: Presence, settings: Settings,
           assignment_id: int, actor_user: dict, status: str,
           reason: str | None = None, note: str | None = None,
           backfill: BackfillHook | None = None,
           decided: Callable[[int], None] | None = None) -> dict:
    """Approve or reject a pending assignment ('completed' means approved).

    Raises NotFound, Forbidden (not the actor's work or region) or Conflict (released,
    already decided, or the same decision twice). Returns the updated assignment. A
    deadlock or serialization failure is retried once, then raised. `decided` (the API's
    fast path) hears of the assignment id right after the commit, before the Redis counter
    and the backfill, which the decision -> source `Viewed` path need not wait for.
    """
    actor = rules.Actor(actor_user["id"], actor_user["role"], actor_user["region"])
    try:
        current, live, updated = _decide_once(conn, assignment_id, actor, actor_user,
                                              status, reason, note)
    except psycopg.errors.TransactionRollback as error:
        log.warning("assignment %s: decision retried after %s", assignment_id,
                    type(error).__name__)
        current, live, updated = _decide_once(conn, assignment_id, actor, actor_user,
                                              status, reason, note)
    if decided is not None:
        decided(assignment_id)
    log.debug("event %s (assignment %s, user %s) decided: %s by user %s", current["event_id"],
              assignment_id, current["user_id"], updated["status"], actor.user_id)
    _after_decision(conn, presence, settings, current["user_id"], live, backfill)
    return updated


def _decide_once(conn: psycopg.Connection, assignment_id: int, actor: rules.Actor,
                 actor_user: dict, status: str, reason: str | None, note: str | None):
    """One attempt: (the row before, the owner's new live count, the row after).

    Two round trips on an autocommit connection: a read the rules are asked about, then one
    statement, its own transaction, that writes the decision only if the assignment is
    still what was read (pending, not released, the same owner). When something changed in
    between (a decision, a release, a move), the rules are asked again about the new row.
    """
    for _ in range(_ATTEMPTS):
        with one_statement(conn) as cur:
            current = _read_assignment(cur, assignment_id)
        if not rules.may_decide(actor, current["user_id"], current["region"]):
            raise Forbidden(f"assignment {assignment_id} is not yours to decide")
        try:
            new_status = rules.transition(current["status"], current["deleted"], status)
        except rules.DecisionRefused as refused:
            raise Conflict(f"assignment {assignment_id}: {refused}") from None
        with one_statement(conn) as cur:
            updated = _record_decision(cur, current, actor_user, new_status, reason, note)
        if updated is not None:
            return current, updated.pop("live"), updated
        log.info("assignment %s changed while being decided; read again", assignment_id)
    raise Conflict(f"assignment {assignment_id} kept changing while being decided; try again")


def _read_assignment(cur, assignment_id: int) -> dict:
    cur.execute(
        "SELECT a.assignment_id, a.user_id, a.event_id, a.status, a.deleted, e.region "
        "FROM assignments a JOIN events e USING (event_id) WHERE a.assignment_id = %s",
        [assignment_id])
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"assignment {assignment_id} not found")
    return row


def _record_decision(cur, current: dict, actor_user: dict, new_status: str,
                     reason: str | None, note: str | None) -> dict | None:
    """The assignment, its history row, its outbox row and its owner's load row, in one
    statement: each round trip between the decision (`decided_at`, the statement's start)
    and its commit is time before the source's `Viewed`. Returns the assignment as the API
    shows it, with the owner's new live count (`live`); None when the assignment is no
    longer pending with the owner `current` names (the caller reads it again). The
    statement's row lock makes a concurrent decision, release or move wait, and READ
    COMMITTED re-checks the WHERE against the row they leave."""
    cur.execute(
        f"""
        WITH a AS (
            UPDATE assignments
            SET status = %(status)s, decided_at = now(), decided_by = %(actor_id)s,
                decision_reason = %(reason)s, decision_note = %(note)s, updated_at = now()
            WHERE assignment_id = %(id)s AND user_id = %(owner)s AND status = 'pending'
              AND NOT deleted
            RETURNING *
        ), logged AS (
            INSERT INTO assignment_history (assignment_id, event_id, user_id, actor_id, actor,
                                            previous_state, new_state, reason)
            SELECT assignment_id, event_id, user_id, %(actor_id)s, %(actor)s, %(previous)s,
                   status, %(history_reason)s
            FROM a
        ), queued AS (
            INSERT INTO outbox_assignments (assignment_id, status)
            SELECT assignment_id, 'completed' FROM a
            ON CONFLICT (assignment_id) DO NOTHING
        ), dropped AS (
            UPDATE operator_load l SET live = l.live - 1 FROM a WHERE l.user_id = a.user_id
            RETURNING l.live
        )
        SELECT {_ASSIGNMENT_FIELDS}, (SELECT live FROM dropped) AS live
        FROM a JOIN events e USING (event_id)
        """,
        {"status": new_status, "actor_id": actor_user["id"], "reason": reason, "note": note,
         "id": current["assignment_id"], "owner": current["user_id"],
         "actor": actor_user["username"],
         "previous": current["status"], "history_reason": reason or "decided"})
    updated = cur.fetchone()
    if updated is not None:
        updated["live"] = updated["live"] or 0
    return updated


def _after_decision(conn: psycopg.Connection, presence: Presence, settings: Settings,
                    user_id: int, live: int, backfill: BackfillHook | None) -> None:
    """Redis follows PostgreSQL's count, then the freed slot is backfilled. The decision
    has committed: a server failing here is logged, and reconcile and the consumers'
    periodic sweep catch up."""
    try:
        presence.set_counts({user_id: live})
    except redis.RedisError as error:
        log.warning("counter of user %s not updated after a decision: %s", user_id, error)
    if backfill is not None:
        backfill("decision", user_id)
        return
    try:
        assigned = assignment.route_waiting(conn, presence, settings)
    except (psycopg.OperationalError, redis.RedisError) as error:
        log.warning("backfill after a decision for user %s failed: %s", user_id, error)
        return
    if assigned:
        log.info("backfill after a decision for user %s assigned %d event(s)", user_id,
                 assigned)


def _fetch(cur, assignment_id: int) -> dict:
    cur.execute(
        f"SELECT {_ASSIGNMENT_FIELDS} FROM assignments a JOIN events e USING (event_id) "
        "WHERE a.assignment_id = %s", [assignment_id])
    return cur.fetchone()


def get_user(conn: psycopg.Connection, user_id: int) -> dict:
    """A user's public fields, or NotFound."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT id, username, name, role, region, available FROM users "
                    "WHERE id = %s", [user_id])
        user = cur.fetchone()
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def list_assignments(conn: psycopg.Connection, user_id: int,
                     expiry_minutes: float | None = None) -> list[dict]:
    """A user's live assignments with their event fields, most severe first, then oldest;
    with `expiry_minutes`, each carries its `expires_at`."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT {_ASSIGNMENT_FIELDS},
                   a.created_at + make_interval(secs => %s * 60) AS expires_at
            FROM assignments a JOIN events e USING (event_id)
            WHERE a.user_id = %s AND a.status = 'pending' AND NOT a.deleted
            ORDER BY e.severity DESC, a.created_at, a.assignment_id
            """, [expiry_minutes, user_id])
        return cur.fetchall()
