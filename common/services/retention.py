"""Retention: delete what only grows, once older than RETENTION_DAYS (flow `prune-old-data`).

What goes, in batches of RETENTION_BATCH_SIZE (one transaction each, index-backed, so a
prune never holds long locks):
- assignment_service: events decided before the cutoff whose decision has arrived (outbox
  row `finished`), with all their assignments, history, outbox rows and `dedup_events` row
  (a duplicate message that late is not worth keeping an id for ever); finished outbox rows
  before the cutoff; sessions expired before the cutoff (ended ones expire soon after).
- relay_service: source events `Viewed` (decided) before the cutoff.

Never touched: anything undecided, live, waiting, or whose decision has not yet reached
the source (its outbox row not finished). Safe to run twice and beside every other process.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

import psycopg

log = logging.getLogger(__name__)

# Decided long ago, decision arrived at the source, nothing live or waiting.
_OLD_DECIDED = """
    SELECT a.event_id FROM assignments a JOIN events e ON e.event_id = a.event_id
    WHERE a.decided_at < %(cutoff)s AND e.waiting_since IS NULL
      AND NOT EXISTS (SELECT 1 FROM outbox_assignments o
                      WHERE o.assignment_id = a.assignment_id AND o.status <> 'finished')
      AND NOT EXISTS (SELECT 1 FROM assignments l WHERE l.event_id = a.event_id
                      AND l.status = 'pending' AND NOT l.deleted)
    ORDER BY a.decided_at LIMIT %(batch)s
    FOR UPDATE OF e SKIP LOCKED
"""

# In the order foreign keys need: children first.
_DELETE_EVENT_ROWS = (
    ("outbox_assignments", "DELETE FROM outbox_assignments WHERE assignment_id = ANY(ARRAY("
                           "SELECT assignment_id FROM assignments WHERE event_id = ANY(%s)))"),
    ("assignment_history", "DELETE FROM assignment_history WHERE event_id = ANY(%s)"),
    ("assignments", "DELETE FROM assignments WHERE event_id = ANY(%s)"),
    ("dedup_events", "DELETE FROM dedup_events WHERE event_id = ANY(%s)"),
    ("events", "DELETE FROM events WHERE event_id = ANY(%s)"),
)

# `= ANY(ARRAY(subquery))`, not `IN (subquery)`: with IN, the planner joined a batch of
# 5,000 ids to the whole table by a sequential scan (the outbox at a million rows: 565 ms a
# batch); the array is probed through the primary key (bench/queries.py).
_BATCHED = {
    "outbox_assignments": "DELETE FROM outbox_assignments WHERE id = ANY(ARRAY(SELECT id FROM "
                          "outbox_assignments WHERE status = 'finished' AND finished_at < "
                          "%(cutoff)s LIMIT %(batch)s FOR UPDATE SKIP LOCKED))",
    "sessions": "DELETE FROM sessions WHERE token_hash = ANY(ARRAY(SELECT token_hash FROM "
                "sessions WHERE expires_at < %(cutoff)s LIMIT %(batch)s FOR UPDATE SKIP LOCKED))",
}

_RELAY_EVENTS = ("DELETE FROM events WHERE event_id = ANY(ARRAY(SELECT event_id FROM events "
                 "WHERE state = 'Viewed' AND decided_at < %(cutoff)s LIMIT %(batch)s "
                 "FOR UPDATE SKIP LOCKED))")


def cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def prune_assignment_service(conn: psycopg.Connection, before: datetime,
                             batch: int) -> Counter:
    """Delete old decided events and their rows, old outbox rows and old sessions of
    assignment_service (an autocommit connection). Returns rows deleted per table."""
    deleted: Counter = Counter()
    while True:
        with conn.transaction():
            ids = [r[0] if isinstance(r, tuple) else r["event_id"] for r in
                   conn.execute(_OLD_DECIDED, {"cutoff": before, "batch": batch}).fetchall()]
            ids = list(dict.fromkeys(ids))
            for table, statement in _DELETE_EVENT_ROWS if ids else ():
                deleted[table] += conn.execute(statement, [ids]).rowcount
        if ids:
            log.info("pruned %d decided event(s) older than %s", len(ids), before.isoformat())
        if len(ids) < batch:
            break
    for table, statement in _BATCHED.items():
        deleted[table] += _in_batches(conn, statement, before, batch)
    return deleted


def prune_relay_service(conn: psycopg.Connection, before: datetime, batch: int) -> Counter:
    """Delete source events decided before `before` (an autocommit connection)."""
    return Counter({"events": _in_batches(conn, _RELAY_EVENTS, before, batch)})


def _in_batches(conn: psycopg.Connection, statement: str, before: datetime, batch: int) -> int:
    total = 0
    while True:
        with conn.transaction():
            count = conn.execute(statement, {"cutoff": before, "batch": batch}).rowcount
        total += count
        if count < batch:
            return total
