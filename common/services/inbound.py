"""Decisions applied to the source: relay_service.events becomes 'Viewed' with its decision.

Called by the relay inbound consumer (`python -m consumers inbound`) for each batch of
events.inbound messages, in one statement. Idempotent: an event that already carries a
decision is left exactly as it is, so a redelivered or duplicated message changes nothing
(and is still acknowledged downstream, so its outbox row can finish).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from common.messages import DecisionMessage
from common.resources import one_statement

log = logging.getLogger(__name__)

# One statement: the update, and which of the batch's events relay_service holds at all
# (read from the statement's snapshot, which the update does not change). On the inbound
# consumer's autocommit connection it is one round trip, its own transaction: `updated_at`
# is the moment the decision reached the source, with no BEGIN before it.
_APPLY = """
    WITH d AS (
        SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::text[], %s::text[],
                             %s::int[], %s::timestamptz[])
            AS d(event_id, assignment_id, decision, reason, note, decided_by, decided_at)
    ), applied AS (
        UPDATE events e
        SET state = 'Viewed', decision = d.decision, decision_reason = d.reason,
            decision_note = d.note, decided_by = d.decided_by,
            decided_at = coalesce(d.decided_at, now()), assignment_id = d.assignment_id,
            updated_at = now()
        FROM d
        WHERE e.event_id = d.event_id AND e.decision IS NULL
        RETURNING e.event_id, e.assignment_id
    )
    SELECT event_id, assignment_id, true AS applied FROM applied
    UNION ALL
    SELECT d.event_id, NULL, false FROM d
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = d.event_id)
"""


@dataclass
class ApplyResult:
    applied: list[dict] = field(default_factory=list)  # changed by this call
    unknown: list = field(default_factory=list)  # event ids not in relay_service.events


def apply_decisions(conn: psycopg.Connection,
                    decisions: Sequence[DecisionMessage]) -> ApplyResult:
    """Write each decision to its source event, in one statement; report unknown events.

    With two copies of one event in a batch, the first wins (the same decision in practice:
    the schema allows one decision per event).
    """
    first: dict = {}
    for d in decisions:
        first.setdefault(d.event_id, d)
    batch = list(first.values())
    with one_statement(conn) as cur:
        rows = cur.execute(_APPLY, _columns(batch)).fetchall()
    applied = [{"event_id": r["event_id"], "assignment_id": r["assignment_id"]}
               for r in rows if r["applied"]]
    if log.isEnabledFor(logging.DEBUG):
        for row in applied:
            log.debug("event %s (assignment %s) Viewed", row["event_id"], row["assignment_id"])
    return ApplyResult(applied, [r["event_id"] for r in rows if not r["applied"]])


def _columns(batch: list[DecisionMessage]) -> list[list]:
    return [
        [d.event_id for d in batch],
        [d.assignment_id for d in batch],
        [d.decision for d in batch],
        [d.reason for d in batch],
        [d.note for d in batch],
        [d.decided_by for d in batch],
        [d.decided_at for d in batch],
    ]
