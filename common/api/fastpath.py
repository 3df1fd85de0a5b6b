"""The outbox fast path: publish a decision to events.inbound right after it commits.

One ConfirmingPublisher per API worker. It is not thread-safe and FastAPI runs routes in a
thread pool, so every use holds the lock. A failed publish is only logged: the decision
has committed and the `check-reviewed` sweep relays its outbox row.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from pika.exceptions import AMQPError

from common.adapters.broker import INBOUND, ConfirmingPublisher
from common.settings import Settings

try:  # written by the review loop; until it lands, the sweep alone relays decisions
    from common.services.outbox import publish_decided
except ImportError:  # pragma: no cover - depends on what has landed
    publish_decided = None

log = logging.getLogger(__name__)


class FastPath:
    """The API worker's publisher, its lock, and a thread that keeps it alive."""

    def __init__(self, settings: Settings, keepalive_seconds: float = 10.0):
        self.settings = settings
        self.publisher = ConfirmingPublisher(settings, "api-fast-path", bases=(INBOUND,))
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._keepalive_seconds = keepalive_seconds
        self._thread = threading.Thread(target=self._keep_alive, name="api-fast-path",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with self.lock:
            self.publisher.close()

    def publish(self, conn: psycopg.Connection, assignment_ids: list[int]) -> None:
        """THE fast-path call site: relay these decided assignments now, best effort."""
        if publish_decided is None:
            return
        try:
            with self.lock:
                publish_decided(conn, self.publisher, self.settings, assignment_ids)
        except Exception as error:  # noqa: BLE001 - committed already; the sweep relays it
            log.warning("fast path failed for assignment(s) %s, the sweep will relay: %s",
                        assignment_ids, error)

    def _keep_alive(self) -> None:
        """Answer RabbitMQ's heartbeats while idle, so the next publish finds a live link."""
        while not self._stop.wait(self._keepalive_seconds):
            with self.lock:
                try:
                    self.publisher.keep_alive()
                except (AMQPError, OSError) as error:
                    log.info("fast-path connection lost (%s); reopened on next publish", error)
                    self.publisher.close()
