"""Backfill off the request thread: waiting work routed once capacity appeared.

A login, an availability switch, a heartbeat that restored presence, a decision or a
logout's release commits, calls `Backfill.request` and answers. One thread per API worker
coalesces those signals and runs `route_waiting` with its own connection until nothing
more can be assigned (at most MAX_ROUTE_CALLS calls). If a server fails here, the
assignment consumers' periodic sweep (BACKFILL_SWEEP_SECONDS) routes the work later.
"""

from __future__ import annotations

import logging
import threading

import psycopg
import redis

from common.adapters.presence import Presence
from common.api.worker import Worker
from common.services import assignment
from common.services.releases import MAX_ROUTE_CALLS
from common.settings import Settings

log = logging.getLogger(__name__)


class Backfill(Worker):
    """The API worker's backfill thread. `request` never blocks on a server."""

    def __init__(self, settings: Settings, presence: Presence):
        super().__init__(settings, "api-backfill")
        self.presence = presence
        self._lock = threading.Lock()
        self._why: list[tuple[str, int]] = []

    def request(self, why: str, user_id: int) -> None:
        """Capacity appeared (`why`, for user `user_id`, already committed): route soon."""
        with self._lock:
            self._why.append((why, user_id))
        self.wake()

    def _step(self) -> None:
        with self._lock:
            why, self._why = self._why, []
        if not why:
            return
        assigned = 0
        try:
            for _ in range(MAX_ROUTE_CALLS):
                step = assignment.route_waiting(self.connection(), self.presence,
                                                self.settings)
                assigned += step
                if not step:
                    break
        except (psycopg.Error, redis.RedisError) as error:
            log.warning("backfill after %s failed (%r); the consumers' sweep routes it",
                        _describe(why), error)
            self.drop_connection()
            return
        if assigned:
            log.info("backfill after %s assigned %d event(s)", _describe(why), assigned)


def _describe(why: list[tuple[str, int]]) -> str:
    shown = ", ".join(f"{reason} of user {user_id}" for reason, user_id in why[:5])
    return shown + (f" and {len(why) - 5} more" if len(why) > 5 else "")
