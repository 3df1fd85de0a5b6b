"""Assign waiting events to operators: the heart of the product.

Called by the assignment consumer (a batch of arrivals), by backfill after a login, an
availability switch, a decision or a release, and by the periodic sweep. Redis picks the
operator fast; PostgreSQL's guarded load rows refuse anything over the cap.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from common import metrics
from common.adapters import assignment_db as db
from common.adapters.presence import Presence
from common.domain import routing
from common.messages import OutboundEvent
from common.settings import Settings

log = logging.getLogger(__name__)


class _RefusalNotice:
    """Says at most once per EVERY seconds, as a warning, how many picks the cap refused.

    Redis's counters run behind PostgreSQL's when two routers (a consumer's worker and an
    API backfill) race for the slot a decision just freed; PostgreSQL refuses the loser's
    pick and the pass corrects Redis. With every operator full and a backlog, that happens
    several times a second (a 10-minute soak at saturation: about 3,000 times), and one
    warning each would bury everything else in the log. Each pass's own INFO line still
    carries its count.
    """

    EVERY = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._last = -self.EVERY

    def refused(self, count: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._count += count
            if now - self._last < self.EVERY:
                return
            total, self._count, self._last = self._count, 0, now
        log.warning("cap refused %d pick(s) since the last notice; Redis corrected from "
                    "PostgreSQL (expected now and then while operators are full)", total)


_refusals = _RefusalNotice()


@dataclass
class RouteResult:
    stored: int = 0
    assigned: list[dict] = field(default_factory=list)
    refused: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    created_at: dict = field(default_factory=dict)  # event id -> source created_at


def receive(conn: psycopg.Connection, presence: Presence, settings: Settings,
            events: Sequence[OutboundEvent]) -> RouteResult:
    """Store a batch of arrivals and route from the waiting set, in one transaction.

    The arrivals compete with the waiting set in one routing pass: those assigned at once
    are stored already assigned, the rest stored waiting (see `_route_pass`).
    The caller acknowledges the messages only after this returns (the commit is done).
    """
    try:
        with conn.transaction(), conn.cursor() as cur:
            fresh = db.record_received(cur, events)
            _log_stored(events, [event.event_id for event in fresh])
            result = _route_pass(cur, presence, settings, limit=max(len(events), 1) * 2,
                                 fresh=fresh)
            result.stored = len(fresh)
    except Exception:
        _resync_counts(conn, presence)
        raise
    _count_assigned(result)
    presence.set_counts(result.counts)
    return result


def _log_stored(events: Sequence[OutboundEvent], stored: list) -> None:
    """DEBUG: a line per event received, stored (and so waiting) or a duplicate."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    fresh = set(stored)
    for event in events:
        if event.event_id in fresh:
            fresh.discard(event.event_id)
            log.debug("event %s stored, waiting (region %s, severity %s)", event.event_id,
                      event.region, event.severity)
        else:
            log.debug("event %s already received; duplicate ignored", event.event_id)


def route_waiting(conn: psycopg.Connection, presence: Presence, settings: Settings,
                  max_passes: int = 20) -> int:
    """Backfill: assign waiting events while capacity remains. Returns how many it assigned.

    It starts from PostgreSQL's counts: a counter write that lost a race (a resync that read
    the load before a decision committed and wrote after the decision's own write: seen
    with the API's backfill thread finishing the previous backfill) can leave Redis saying
    an operator is at the cap with a slot free, and the backfill that decision asked for
    would then find nobody, correct the counter and stop, leaving the slot to the next
    sweep (BACKFILL_SWEEP_SECONDS).
    """
    total = 0
    _resync_counts(conn, presence)
    for _ in range(max_passes):
        try:
            with conn.transaction(), conn.cursor() as cur:
                result = _route_pass(cur, presence, settings, settings.ASSIGNMENT_BATCH_SIZE)
        finally:
            _resync_counts(conn, presence)
        _count_assigned(result)
        total += len(result.assigned)
        if not result.assigned and not result.refused:
            break
    return total


def _resync_counts(conn: psycopg.Connection, presence: Presence) -> None:
    """Redis counters := PostgreSQL, correcting tentative picks (best effort: a server that
    is down now is what the caller is already handling)."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            presence.set_counts(db.live_counts(cur))
    except Exception as error:  # noqa: BLE001 - the original error matters more
        log.warning("could not resync counters: %s", error)


def _route_pass(cur, presence: Presence, settings: Settings, limit: int,
                fresh: Sequence[OutboundEvent] = ()) -> RouteResult:
    """Draw waiting events the present operators can take, pick, guard, insert.

    `fresh`: events received in this transaction, not stored yet. They are candidates beside
    the drawn ones, in the same priority order and the same per-region limits, and are
    stored in the statement that inserts the assignments: waiting, unless assigned now.
    """
    result = RouteResult()
    free = presence.capacity()
    drawn = _draw(cur, settings, free, limit, fresh) if free else []
    if not drawn:
        if fresh:
            db.store_and_assign(cur, fresh, [], actor="router", reason="assigned")
        return result
    wanted = [
        routing.wanted_region(e["region"], e["overflow_due"], settings.ROUTING_MODE)
        + (f":{e['released_from']}" if e["released_from"] else "")
        for e in drawn
    ]
    picks = presence.pick(wanted)
    requested: dict[int, list] = {}
    for event, user_id in zip(drawn, picks, strict=True):
        if user_id is not None:
            requested.setdefault(user_id, []).append(event["event_id"])
    routable = set(db.lock_routable_users(cur, sorted(requested))) if requested else set()
    result.refused = sum(len(events) for user, events in requested.items()
                         if user not in routable)
    result.assigned, refused, result.counts = _assign(
        cur, settings, fresh, {u: events for u, events in requested.items() if u in routable})
    result.refused += refused
    for user_id in set(requested) - set(result.counts):
        # PostgreSQL refused the pick: not an operator, not available, or no live session.
        log.warning("user %s is in active_users but PostgreSQL refuses them work (not an "
                    "available operator with a live session); removed", user_id)
        presence.set_unavailable(user_id)
    if result.assigned:
        result.created_at = {e["event_id"]: e["created_at"] for e in drawn}
        log.info("assigned %d event(s), %d refused by the cap", len(result.assigned),
                 result.refused)
    return result


def _count_assigned(result: RouteResult) -> None:
    """After the commit: metrics of the assignments made (counted by the process that made
    them: the assignment consumer, or the API's backfill), and a DEBUG line for each."""
    if not result.assigned:
        return
    metrics.EVENTS_ASSIGNED.inc(len(result.assigned))
    metrics.observe_since(metrics.INSERT_TO_ASSIGNED, time.time(),
                          [result.created_at.get(row["event_id"]) for row in result.assigned])
    if log.isEnabledFor(logging.DEBUG):
        for row in result.assigned:
            log.debug("event %s (assignment %s) assigned to user %s", row["event_id"],
                      row["assignment_id"], row["user_id"])


def _draw(cur, settings: Settings, free: dict[str, int], limit: int,
          fresh: Sequence[OutboundEvent] = ()) -> list[dict]:
    """Lock waiting events to route now, in priority order, at most what capacity allows:
    per served region what its operators can take, then any region's events due for
    overflow; all in one statement. Fresh arrivals (not stored yet) join the draws they
    would have been drawn by, had they been stored waiting first."""
    total = min(sum(free.values()), limit)
    overflow = settings.OVERFLOW_AFTER_SECONDS
    arrivals = [_as_drawn(event, overflow) for event in fresh]
    if settings.ROUTING_MODE == "global":
        draws = [(None, total, False)]
    else:
        draws = [(routing.served_region(user_region), min(slots, limit), False)
                 for user_region, slots in free.items()]
        if overflow >= 0:
            draws.append((None, total, True))
    rows = db.draw_waiting(cur, draws, overflow)
    if arrivals:
        rows = _with_arrivals(draws, rows, arrivals)
    drawn: dict = {}
    for event in rows:
        drawn.setdefault(event["event_id"], event)
    ordered = sorted(drawn.values(), key=_priority)
    return ordered[: max(total, 0)]


def _priority(event: dict):
    return -event["severity"], event["created_at"]


def _as_drawn(event: OutboundEvent, overflow: int) -> dict:
    """A fresh arrival as a draw returns a waiting event (waiting since now: due for
    overflow only when OVERFLOW_AFTER_SECONDS is 0)."""
    return {"event_id": event.event_id, "region": event.region, "severity": event.severity,
            "created_at": event.created_at, "released_from": None, "overflow_due": overflow == 0}


def _with_arrivals(draws, rows: list[dict], arrivals: list[dict]) -> list[dict]:
    """Each draw's rows merged with the arrivals it matches, cut to its limit again: what
    the draw would have returned with the arrivals stored waiting (the caller dedups and
    sorts)."""
    pool = [*{r["event_id"]: r for r in rows}.values(), *arrivals]  # two draws may share a row
    by_region: dict[str, list[dict]] = {}
    for event in pool:
        by_region.setdefault(event["region"], []).append(event)
    out = []
    for region, limit, overflow_only in draws:
        mine = pool if region is None else by_region.get(region, [])
        if overflow_only:
            mine = [event for event in mine if event["overflow_due"]]
        if len(mine) > limit:
            mine = heapq.nsmallest(max(limit, 0), mine, key=_priority)
        out.extend(mine)
    return out


class _OverCap(Exception):
    """The optimistic write met a load row that cannot take its share: undo it."""


def _assign(cur, settings: Settings, fresh: Sequence[OutboundEvent],
            requested: dict[int, list]) -> tuple[list[dict], int, dict[int, int]]:
    """PostgreSQL's word on Redis's picks (of routable users): grant what the cap allows,
    in priority order, and write the granted assignments (and the fresh arrivals).

    Returns the assignment rows, how many picks the cap refused, and the live counts of
    every picked operator with a load row, after this transaction.

    The load rows are the one lock every router takes (in user-id order), so they are taken
    last: the rows are written first, inside a savepoint, then the load rows locked and
    raised, and the lock is held only for that and the commit. When Redis picked past the
    cap (its counters behind PostgreSQL's), the savepoint is rolled back and the batch
    written again with only what the locked rows grant.
    """
    cap = settings.MAX_ASSIGNMENTS
    increments = {user_id: len(events) for user_id, events in requested.items()}
    if increments:
        try:
            with cur.connection.transaction():
                assigned = _write(cur, fresh, [(u, e) for u, events in requested.items()
                                               for e in events])
                live = db.lock_loads(cur, sorted(increments))
                if any(u not in live or live[u] + n > cap for u, n in increments.items()):
                    raise _OverCap()
                updated = _add_load(cur, increments, cap)
            return assigned, 0, {**live, **updated}
        except _OverCap:
            pass  # rolled back to the savepoint, its load-row locks with it
    live = db.lock_loads(cur, sorted(increments)) if increments else {}
    pairs, grants, refused = [], {}, 0
    for user_id, events in requested.items():
        granted = routing.grant(len(events), live[user_id], cap) if user_id in live else 0
        refused += len(events) - granted
        if granted:
            grants[user_id] = granted
            pairs.extend((user_id, event_id) for event_id in events[:granted])
    counts = dict(live)
    if grants:
        counts.update(_add_load(cur, grants, cap))
    if refused:
        _refusals.refused(refused)
    return _write(cur, fresh, pairs), refused, counts


def _add_load(cur, increments: dict[int, int], cap: int) -> dict[int, int]:
    """The guarded increment of rows this transaction has locked: it must take them all."""
    updated = db.add_load(cur, increments, cap)
    if set(updated) != set(increments):
        raise RuntimeError(f"load guard refused locked rows: {set(increments) - set(updated)}")
    return updated


def _write(cur, fresh: Sequence[OutboundEvent], pairs: list) -> list[dict]:
    """The assignments of `pairs`, with the arrivals' mirror rows when there are any."""
    if fresh:
        return db.store_and_assign(cur, fresh, pairs, actor="router", reason="assigned")
    if pairs:
        return db.insert_assignments(cur, pairs, actor="router", reason="assigned")
    return []
