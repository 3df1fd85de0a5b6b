"""The outbox fast path: decisions relayed to events.inbound off the request thread.

A request commits its decision, hands the assignment id to `FastPath.submit` and answers.
One thread per API worker publishes what was handed over, with its own PostgreSQL
connection and its own ConfirmingPublisher, so a slow or blocked broker holds neither a
request, nor a pooled connection, nor a lock a request needs. What the broker does not
confirm is retried with back-off; after RETRY_GIVE_UP_SECONDS it is left to the
`check-reviewed` sweep, which relays every unfinished outbox row anyway.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterable

import psycopg
from pika.exceptions import AMQPError

from common.adapters.broker import INBOUND, ConfirmingPublisher
from common.api.worker import Worker
from common.services.outbox import publish_decided
from common.settings import Settings

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 15.0
RETRY_GIVE_UP_SECONDS = 600.0
MAX_RETRYING = 10_000  # beyond this many unconfirmed ids, the sweep alone relays the rest
SWEEP_RETRY_SECONDS = 5.0

_UNPUBLISHED = (
    "SELECT assignment_id FROM outbox_assignments "
    "WHERE assignment_id = ANY(%s) AND status = 'completed' AND published_at IS NULL"
)


class FastPath(Worker):
    """The API worker's publishing thread. `submit` never blocks on a server."""

    def __init__(self, settings: Settings):
        super().__init__(settings, "api-fast-path")
        self.publisher = ConfirmingPublisher(settings, "api-fast-path", bases=(INBOUND,))
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        # assignment id -> (first failure, next attempt, delay) of ids not yet confirmed
        self._retrying: dict[int, tuple[float, float, float]] = {}
        self._swept = False  # the start-up sweep, done once it succeeds
        self._sweep_at = 0.0  # when to try it (again, after a failure)

    def submit(self, assignment_ids: Iterable[int]) -> None:
        """THE fast-path call site (the decide route, after its commit): relay these soon."""
        for assignment_id in assignment_ids:
            self._queue.put(assignment_id)
        self.wake()

    def _cleanup(self) -> None:
        self.publisher.close()

    def _timeout(self) -> float | None:
        """Until the next retry or sweep is due; with none, until woken (the publisher's
        keeper answers the broker's heartbeats meanwhile)."""
        due = min([next_at for _, next_at, _ in self._retrying.values()]
                  + ([] if self._swept else [self._sweep_at]), default=None)
        return None if due is None else max(0.0, due - time.monotonic())

    def _step(self) -> None:
        """Publish what was submitted and what is due for a retry."""
        if not self._swept and time.monotonic() >= self._sweep_at:
            self._sweep_once()
        now = time.monotonic()
        fresh = self._drain()
        due = [i for i, (_, next_at, _) in self._retrying.items() if next_at <= now]
        ids = sorted(set(fresh) | set(due))
        if not ids:
            return
        try:
            publish_decided(self.connection(), self.publisher, self.settings, ids)
            left = self._unpublished(ids)
        except (psycopg.Error, AMQPError, OSError) as error:
            log.warning("fast path failed for assignment(s) %s; retried later: %r", ids, error)
            self.drop_connection()
            left = set(ids)
        self._schedule(ids, left, now)

    def _sweep_once(self) -> None:
        """Relay what an earlier API process committed but never published (module doc)."""
        try:
            relayed = publish_decided(self.connection(), self.publisher, self.settings)
        except (psycopg.Error, AMQPError, OSError) as error:
            log.warning("fast path: start-up sweep failed, tried again in %g s: %r",
                        SWEEP_RETRY_SECONDS, error)
            self.drop_connection()
            self._sweep_at = time.monotonic() + SWEEP_RETRY_SECONDS
            return
        self._swept = True
        if relayed:
            log.info("fast path: relayed %d decision(s) left unpublished or unfinished at "
                     "start", relayed)

    def _drain(self) -> list[int]:
        ids = []
        while True:
            try:
                ids.append(self._queue.get_nowait())
            except queue.Empty:
                return ids

    def _unpublished(self, ids: list[int]) -> set[int]:
        with self.connection().cursor() as cur:
            return {row["assignment_id"] for row in cur.execute(_UNPUBLISHED, [ids])}

    def _schedule(self, ids: list[int], left: set[int], now: float) -> None:
        """Forget the confirmed; back off the rest, or hand them over to the sweep."""
        for assignment_id in ids:
            if assignment_id not in left:
                self._retrying.pop(assignment_id, None)
                continue
            first, _, delay = self._retrying.get(assignment_id, (now, now, 0.0))
            delay = min(MAX_RETRY_SECONDS, max(FIRST_RETRY_SECONDS, delay * 2))
            if now - first > RETRY_GIVE_UP_SECONDS or len(self._retrying) > MAX_RETRYING:
                self._retrying.pop(assignment_id, None)
                log.warning("assignment %s: fast path gives up; the check-reviewed sweep "
                            "relays it", assignment_id)
            else:
                self._retrying[assignment_id] = (first, now + delay, delay)
        if left:
            log.info("fast path: %d assignment(s) not confirmed yet, retrying", len(left))
