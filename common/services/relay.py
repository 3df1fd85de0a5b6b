"""Relay the outbox of relay_service.events to events.outbound.

`relay_pending` is the use case: claim undispatched rows, publish them with confirms, mark
only the confirmed ones dispatched. The long-running relay (`python -m consumers relay`) calls
it on every NOTIFY and poll; the Prefect flow `relay-poll` calls it as a sweep, together with
`redispatch_lost`. Any number of callers may run at once: claims use FOR UPDATE SKIP LOCKED.

Re-dispatch backs off: each dispatch sets `next_redispatch_at` to now plus
REDISPATCH_AFTER_SECONDS doubled per earlier dispatch, capped at REDISPATCH_MAX_SECONDS. An
event is never given up while it may still be valid; it stops only on evidence that the
assignment consumer dead-lettered exactly the message the relay sends (`dead_lettered_at`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import psycopg
from psycopg.rows import dict_row

from common.adapters import broker, rejected_events
from common.adapters.broker import ConfirmingPublisher, Message
from common.domain.events import to_message
from common.settings import Settings

log = logging.getLogger(__name__)

EVENT_FIELDS = (
    "event_id, region, rule_type, location, severity, device_id, camera_id, "
    "frame_reference, state, created_at"
)
# Served by the partial index events_undispatched_idx (created_at, undispatched only).
CLAIM = f"""
    SELECT {EVENT_FIELDS} FROM events
    WHERE state = 'Not Viewed' AND dispatched_at IS NULL
    ORDER BY created_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
# The old dispatch_count on the right: the first dispatch waits `after`, then 2x, 4x, ...
MARK_DISPATCHED = """
    UPDATE events SET dispatched_at = now(), dispatch_count = dispatch_count + 1,
        next_redispatch_at = now() + make_interval(
            secs => least(%(after)s * power(2, least(dispatch_count, 40)), %(cap)s))
    WHERE event_id = ANY(%(ids)s)
"""
# Served by the partial index events_redispatch_due_idx (next_redispatch_at).
CLAIM_UNCONFIRMED = f"""
    SELECT {EVENT_FIELDS}, dispatch_count FROM events
    WHERE state = 'Not Viewed' AND dispatched_at IS NOT NULL
      AND receipt_confirmed_at IS NULL AND dead_lettered_at IS NULL
      AND next_redispatch_at <= now()
    ORDER BY next_redispatch_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
MARK_DEAD_LETTERED = """
    UPDATE events SET dead_lettered_at = now(), dead_letter_reason = %s WHERE event_id = %s
"""
# REDISPATCH_AFTER_SECONDS and REDISPATCH_MAX_SECONDS' defaults, for callers without settings.
DEFAULT_BACKOFF = (300, 21_600)
MARK_RECEIVED = "UPDATE events SET receipt_confirmed_at = now() WHERE event_id = ANY(%s)"
STORED = "SELECT event_id FROM dedup_events WHERE event_id = ANY(%s)"


def messages_for(rows: list[dict]) -> list[Message]:
    """The outbound messages of claimed rows, keyed by event id."""
    return [Message(row["event_id"], broker.encode(to_message(row))) for row in rows]


def backoff(settings: Settings) -> tuple[int, int]:
    """(first wait, cap) of re-dispatch, in seconds."""
    return settings.REDISPATCH_AFTER_SECONDS, settings.REDISPATCH_MAX_SECONDS


def mark_dispatched(cur, event_ids: list, waits: tuple[int, int]) -> None:
    after, cap = waits
    cur.execute(MARK_DISPATCHED, {"after": after, "cap": cap, "ids": event_ids})


def relay_batch(
    conn: psycopg.Connection, publisher: ConfirmingPublisher, batch_size: int,
    waits: tuple[int, int] = DEFAULT_BACKOFF,
) -> tuple[int, int]:
    """Claim, publish and mark one batch in one transaction. Returns (claimed, confirmed).

    A PublishError rolls the transaction back: nothing is marked, the rows stay claimable.
    """
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(CLAIM, (batch_size,)).fetchall()
        if not rows:
            return 0, 0
        confirmed = publisher.publish_batch(broker.OUTBOUND, messages_for(rows))
        if confirmed:
            mark_dispatched(cur, list(confirmed), waits)
    if len(confirmed) < len(rows):
        log.warning(
            "%d of %d events not confirmed; left undispatched",
            len(rows) - len(confirmed),
            len(rows),
        )
    if log.isEnabledFor(logging.DEBUG):
        for event_id in confirmed:
            log.debug("event %s relayed to %s", event_id, broker.OUTBOUND)
    return len(rows), len(confirmed)


def relay_pending(
    conn: psycopg.Connection,
    publisher: ConfirmingPublisher,
    settings: Settings,
    batch_size: int | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Dispatch every undispatched 'Not Viewed' event, batch by batch. Returns how many.

    Stops early when a batch was not fully confirmed, so a refusing broker is not hammered
    (the next NOTIFY, poll or sweep tries again), and when `stop()` turns true.
    """
    batch_size = batch_size or settings.RELAY_BATCH_SIZE
    total = 0
    while True:
        claimed, confirmed = relay_batch(conn, publisher, batch_size, backoff(settings))
        total += confirmed
        if claimed < batch_size or confirmed < claimed or stop():
            return total


def relay_pending_parallel(
    workers: Sequence[tuple[psycopg.Connection, ConfirmingPublisher]],
    settings: Settings,
    batch_size: int | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Drain with one thread per (connection, publisher) pair; returns how many dispatched.

    One batch in flight leaves the broker idle while the batch is claimed and marked; two
    workers keep it busy (SKIP LOCKED keeps them apart). Called by the long-running relay
    and the benchmark. Raises the first error a worker met, after all have finished.
    """
    counts, errors = [0] * len(workers), []

    def work(index: int) -> None:
        conn, publisher = workers[index]
        try:
            counts[index] = relay_pending(conn, publisher, settings, batch_size, stop)
        except Exception as error:  # re-raised by the caller's thread below
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=(i,), name=f"relay-{i}") for i in range(len(workers))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sum(counts)


def redispatch_lost(
    relay_conn: psycopg.Connection,
    assignment_conn: psycopg.Connection,
    publisher: ConfirmingPublisher,
    settings: Settings,
) -> int:
    """Re-publish events due for re-dispatch that the assignment service never stored.

    Events found in assignment_service.dedup_events get receipt_confirmed_at and are left
    alone for ever after; those whose very message the assignment consumer dead-lettered
    (assignment_service.rejected_events) get dead_lettered_at and are never re-dispatched;
    the others are published again, and wait twice as long before the next time.
    Called by the Prefect flow `relay-poll`. Returns how many were re-published.
    """
    total = 0
    while True:
        claimed, changed, republished = _redispatch_batch(
            relay_conn, assignment_conn, publisher, settings
        )
        total += republished
        if claimed < settings.RELAY_BATCH_SIZE or changed < claimed:
            return total


def _redispatch_batch(relay_conn, assignment_conn, publisher, settings) -> tuple[int, int, int]:
    """One batch of redispatch_lost in one relay transaction: (claimed, changed, republished)."""
    with relay_conn.transaction(), relay_conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(CLAIM_UNCONFIRMED, (settings.RELAY_BATCH_SIZE,)).fetchall()
        if not rows:
            return 0, 0, 0
        stored = _stored(assignment_conn, [row["event_id"] for row in rows])
        if stored:
            cur.execute(MARK_RECEIVED, (list(stored),))
        messages = messages_for([row for row in rows if row["event_id"] not in stored])
        refused = _refused(assignment_conn, messages)
        for event_id, reason in refused.items():
            cur.execute(MARK_DEAD_LETTERED, (reason, event_id))
        lost = [m for m in messages if m.key not in refused]
        confirmed = publisher.publish_batch(broker.OUTBOUND, lost) if lost else set()
        if confirmed:
            mark_dispatched(cur, list(confirmed), backoff(settings))
    counts = {row["event_id"]: row["dispatch_count"] for row in rows}
    for event_id, reason in refused.items():
        log.warning("event %s was dead-lettered by the assignment service (%s); "
                    "never re-dispatched again", event_id, reason)
    for event_id in confirmed:
        log.warning("event %s was never stored by the assignment service; re-dispatched "
                    "(dispatch %d)", event_id, counts[event_id] + 1)
    log.info("redispatch: %d confirmed received, %d dead-lettered, %d re-dispatched",
             len(stored), len(refused), len(confirmed))
    return len(rows), len(stored) + len(refused) + len(confirmed), len(confirmed)


def _stored(assignment_conn: psycopg.Connection, event_ids: list) -> set:
    """Which of `event_ids` the assignment service has received (its dedup rows)."""
    with assignment_conn.transaction():
        rows = assignment_conn.execute(STORED, (event_ids,)).fetchall()
    return {row["event_id"] if isinstance(row, dict) else row[0] for row in rows}


def _refused(assignment_conn: psycopg.Connection, messages: list[Message]) -> dict:
    """{event_id: reason} of the messages the assignment consumer dead-lettered, byte for
    byte: a forged message naming the same event with other contents is no evidence."""
    if not messages:
        return {}
    found = rejected_events.find(assignment_conn, [m.key for m in messages])
    refused = {}
    for message in messages:
        hit = found.get((message.key, rejected_events.digest(message.body)))
        if hit:
            reason, kind = hit
            refused[message.key] = f"{kind}: {reason}"
    return refused
