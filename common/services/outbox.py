"""The decision outbox: decided assignments relayed to events.inbound, then finished.

`publish_decided` is the one function behind both paths of DESIGN.md: the fast path (the
API, right after a decision commits, with the ids just decided) and the sweep (the Prefect
flow check-reviewed, ids None). A batch is claimed by one statement that takes its rows
with FOR UPDATE SKIP LOCKED and stamps them `published_at = now()`, `attempts + 1`: a lease
of OUTBOX_REPUBLISH_SECONDS, so two paths running at once never both send a row. What the
broker then does not confirm gets its previous stamp back and is retried; a process that
dies between the claim and the confirm leaves a lease that the sweep takes over once it
has run out. `finish` is the ack consumer's step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from common.adapters import broker
from common.adapters.broker import ConfirmingPublisher, Message, PublishError
from common.resources import one_statement
from common.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 1000

# One statement, so a claim is one round trip on an autocommit connection: under READ
# COMMITTED a row another claim stamped since this statement's snapshot is re-checked
# against the WHERE and left out, and one it still holds is skipped.
_CLAIM = """
    WITH claimed AS (
        SELECT o.id, o.published_at AS previous
        FROM outbox_assignments o
        WHERE o.status = 'completed'
          AND (o.published_at IS NULL
               OR o.published_at < now() - make_interval(secs => %(republish)s))
          {only}
        ORDER BY o.published_at NULLS FIRST, o.id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox_assignments o SET published_at = now(), attempts = o.attempts + 1
    FROM claimed c, assignments a
    WHERE o.id = c.id AND a.assignment_id = o.assignment_id
    RETURNING o.assignment_id, a.event_id, a.status AS decision, a.decision_reason,
              a.decision_note, a.decided_by, a.decided_at, c.previous
"""

# The claim undone for what the broker did not confirm.
_UNCLAIM = """
    UPDATE outbox_assignments o SET published_at = r.previous, attempts = o.attempts - 1
    FROM unnest(%s::bigint[], %s::timestamptz[]) AS r(assignment_id, previous)
    WHERE o.assignment_id = r.assignment_id
"""


def decision_message(row: dict) -> dict:
    """The events.inbound JSON of one decided assignment (common.messages.DecisionMessage)."""
    return {
        "assignmentId": row["assignment_id"],
        "eventId": str(row["event_id"]),
        "decision": row["decision"],
        "reason": row["decision_reason"],
        "note": row["decision_note"],
        "decidedBy": row["decided_by"],
        "decidedAt": row["decided_at"].isoformat() if row["decided_at"] else None,
    }


def publish_decided(conn: psycopg.Connection, publisher: ConfirmingPublisher,
                    settings: Settings, assignment_ids: Sequence[int] | None = None) -> int:
    """Publish unfinished outbox rows not published within OUTBOX_REPUBLISH_SECONDS.

    `assignment_ids`: only these (the fast path); None: all of them, batch by batch (the
    sweep). Returns how many the broker confirmed. A broker that refuses or cannot be
    reached is logged, not raised: the decision is committed already, and the sweep
    retries every row that was not confirmed.
    """
    if assignment_ids is not None and not assignment_ids:
        return 0
    total = 0
    while True:
        try:
            claimed, confirmed = _publish_batch(conn, publisher, settings, assignment_ids)
        except PublishError as error:
            log.warning("outbox publish failed (%s); the sweep will retry", error)
            return total
        total += confirmed
        if claimed < BATCH_SIZE or confirmed < claimed or assignment_ids is not None:
            return total


def _publish_batch(conn: psycopg.Connection, publisher: ConfirmingPublisher,
                   settings: Settings, assignment_ids: Sequence[int] | None) -> tuple[int, int]:
    """Claim, publish, and undo the claim of what was not confirmed: (claimed, confirmed)."""
    only = "" if assignment_ids is None else "AND o.assignment_id = ANY(%(ids)s)"
    params = {"republish": settings.OUTBOX_REPUBLISH_SECONDS, "ids": list(assignment_ids or []),
              "limit": BATCH_SIZE}
    with one_statement(conn) as cur:
        rows = cur.execute(_CLAIM.format(only=only), params).fetchall()
    if not rows:
        return 0, 0
    rows.sort(key=lambda row: row["assignment_id"])
    messages = [Message(row["assignment_id"], broker.encode(decision_message(row)))
                for row in rows]
    try:
        confirmed = publisher.publish_batch(broker.INBOUND, messages)
    except Exception:
        _unclaim(conn, rows)
        raise
    if len(confirmed) < len(rows):
        _unclaim(conn, [row for row in rows if row["assignment_id"] not in confirmed])
        # A quorum queue that refused (reject-publish) keeps refusing on that channel even
        # once it accepts again; the next attempt opens a fresh one.
        publisher.close()
    _log_published(rows, confirmed)
    return len(rows), len(confirmed)


def _unclaim(conn: psycopg.Connection, rows: list[dict]) -> None:
    """Give unconfirmed rows their previous stamp back, so the next attempt takes them at
    once. If PostgreSQL fails here too, their lease runs out instead (the module doc)."""
    try:
        with one_statement(conn) as cur:
            cur.execute(_UNCLAIM, [[row["assignment_id"] for row in rows],
                                   [row["previous"] for row in rows]])
    except psycopg.Error as error:
        log.warning("outbox: %d unconfirmed decision(s) keep their lease (%s); the sweep "
                    "retries them after OUTBOX_REPUBLISH_SECONDS", len(rows), error)


def _log_published(rows: list[dict], confirmed: set) -> None:
    """A line per batch at INFO (a WARNING when some were not confirmed), one per row at
    DEBUG."""
    if log.isEnabledFor(logging.DEBUG):
        for row in rows:
            log.debug("event %s (assignment %s): decision %s to %s", row["event_id"],
                      row["assignment_id"],
                      "published" if row["assignment_id"] in confirmed else "NOT confirmed",
                      broker.INBOUND)
    missing = len(rows) - len(confirmed)
    if missing:
        log.warning("%d of %d decision(s) not confirmed by %s; the sweep retries them, e.g. "
                    "assignment %s", missing, len(rows), broker.INBOUND,
                    next(r["assignment_id"] for r in rows if r["assignment_id"] not in confirmed))
    else:
        log.info("published %d decision(s) to %s", len(rows), broker.INBOUND)


@dataclass
class FinishResult:
    finished: list[int] = field(default_factory=list)  # finished by this call
    unknown: list[int] = field(default_factory=list)  # no outbox row with this id


def finish(conn: psycopg.Connection, assignment_ids: Sequence[int]) -> FinishResult:
    """Mark outbox rows finished (the ack consumer), idempotently, in one transaction.

    A row already finished is left as it is (its finished_at stays the first one); an id
    with no outbox row is reported as unknown for the caller to dead-letter.
    """
    ids = sorted(set(assignment_ids))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "UPDATE outbox_assignments SET status = 'finished', finished_at = now() "
            "WHERE assignment_id = ANY(%s) AND status = 'completed' RETURNING assignment_id",
            [ids],
        )
        finished = [row["assignment_id"] for row in cur.fetchall()]
        cur.execute("SELECT assignment_id FROM outbox_assignments WHERE assignment_id = ANY(%s)",
                    [ids])
        known = {row["assignment_id"] for row in cur.fetchall()}
    return FinishResult(finished, [i for i in ids if i not in known])
