"""The decision outbox: decided assignments relayed to events.inbound, then finished.

`publish_decided` is the one function behind both paths of DESIGN.md: the fast path (the
API, right after a decision commits, with the ids just decided) and the sweep (the Prefect
flow check-reviewed, ids None). Rows are claimed with FOR UPDATE SKIP LOCKED and held while
their batch is published, so the two running at once never both send a row; a row is marked
published only after the broker confirmed it. `finish` is the ack consumer's step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from common.adapters import broker
from common.adapters.broker import ConfirmingPublisher, Message, PublishError
from common.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 1000

_CLAIM = """
    SELECT o.assignment_id, a.event_id, a.status AS decision, a.decision_reason,
           a.decision_note, a.decided_by, a.decided_at
    FROM outbox_assignments o JOIN assignments a USING (assignment_id)
    WHERE o.status = 'completed'
      AND (o.published_at IS NULL
           OR o.published_at < now() - make_interval(secs => %(republish)s))
      {only}
    ORDER BY o.published_at NULLS FIRST, o.id
    LIMIT %(limit)s
    FOR UPDATE OF o SKIP LOCKED
"""

_MARK_PUBLISHED = """
    UPDATE outbox_assignments SET published_at = now(), attempts = attempts + 1
    WHERE assignment_id = ANY(%s)
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
    """Claim, publish and mark one batch in one transaction: (claimed, confirmed)."""
    only = "" if assignment_ids is None else "AND o.assignment_id = ANY(%(ids)s)"
    params = {"republish": settings.OUTBOX_REPUBLISH_SECONDS, "ids": list(assignment_ids or []),
              "limit": BATCH_SIZE}
    with conn.transaction(), conn.cursor() as cur:
        rows = cur.execute(_CLAIM.format(only=only), params).fetchall()
        if not rows:
            return 0, 0
        messages = [Message(row["assignment_id"], broker.encode(decision_message(row)))
                    for row in rows]
        confirmed = publisher.publish_batch(broker.INBOUND, messages)
        if confirmed:
            cur.execute(_MARK_PUBLISHED, [sorted(confirmed)])
    if len(confirmed) < len(rows):
        # A quorum queue that refused (reject-publish) keeps refusing on that channel even
        # once it accepts again; the next attempt opens a fresh one.
        publisher.close()
    _log_published(rows, confirmed)
    return len(rows), len(confirmed)


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
