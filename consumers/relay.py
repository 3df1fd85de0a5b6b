"""The long-running relay: relay_service.events → events.outbound, in real time.

`python -m consumers relay` calls `run(settings)`. The relay LISTENs on `events_inserted`
(one NOTIFY per insert statement) and drains on every notification, and every
RELAY_IDLE_POLL_SECONDS as a fallback. Draining is `common.services.relay`: claim with SKIP
LOCKED, publish with confirms, mark only what was confirmed, so any number of relays may run.

Shaped after pika's asynchronous_consumer_example: one small method per step, reconnection
with a capped exponential back-off after PostgreSQL or RabbitMQ goes away. SIGTERM stops it
between batches.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import suppress

import psycopg
from pika.exceptions import AMQPError

from common import heartbeat, metrics
from common.adapters.broker import ConfirmingPublisher, PublishError
from common.resources import relay_connection
from common.services.relay import backoff, relay_batch, relay_pending_parallel
from common.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "events_inserted"
WORKERS = 2
RECONNECT_MIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0
# How long one wait for a NOTIFY lasts before checking for a stop and heartbeats.
WAIT_SLICE_SECONDS = 1.0
TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, PublishError, AMQPError, OSError)


class Relay:
    """One relay process: a LISTEN connection plus WORKERS (connection, publisher) pairs."""

    def __init__(self, settings: Settings, workers: int = WORKERS):
        self.settings = settings
        self.workers = workers
        self.stopping = threading.Event()
        self._listen: psycopg.Connection | None = None
        self._pairs: list[tuple[psycopg.Connection, ConfirmingPublisher]] = []
        self._delay = RECONNECT_MIN_SECONDS

    def run(self) -> None:
        """Called by `run(settings)`: connect, serve, and reconnect after failures, until stopped."""
        while not self.stopping.is_set():
            try:
                self.connect()
                self.serve()
            except TRANSIENT as error:
                log.warning("relay lost a server: %s", _first_line(error))
                self.close()
                self.back_off()
        self.close()
        log.info("relay stopped")

    def connect(self) -> None:
        """Called by run: LISTEN first (no insert is missed), then open the workers."""
        self._listen = psycopg.connect(self.settings.relay_dsn, autocommit=True)
        self._listen.execute(f"LISTEN {CHANNEL}")
        for index in range(self.workers):
            name = f"relay:{self.settings.NAMESPACE or '-'}:{os.getpid()}:{index}"
            publisher = ConfirmingPublisher(self.settings, name)
            self._pairs.append((relay_connection(self.settings), publisher))
            publisher.ensure_open()
        log.info("relay connected (%d workers), listening on %s", self.workers, CHANNEL)

    def serve(self) -> None:
        """Called by run once connected: drain now, then after every NOTIFY or idle poll."""
        self.drain()
        self._delay = RECONNECT_MIN_SECONDS
        while not self.stopping.is_set():
            self.wait()
            if not self.stopping.is_set():
                self.drain()

    def drain(self) -> None:
        """Called by serve: one batch on the first worker (fast when idle); a full one means
        a backlog, which all workers drain together."""
        conn, publisher = self._pairs[0]
        batch = self.settings.RELAY_BATCH_SIZE
        claimed, confirmed = relay_batch(conn, publisher, batch, backoff(self.settings))
        total = confirmed
        if claimed == batch and confirmed == claimed and not self.stopping.is_set():
            total += relay_pending_parallel(self._pairs, self.settings, batch, self.stopping.is_set)
        if total:
            metrics.EVENTS_RELAYED.inc(total)
            log.info("dispatched %d events to %s", total, self.settings.name("events.outbound"))

    def wait(self) -> None:
        """Called by serve: return on a NOTIFY, on the idle poll deadline, or on stop.

        Waits in slices so SIGTERM is seen promptly (the publishers' keepers answer the
        broker's heartbeats meanwhile).
        """
        deadline = time.monotonic() + self.settings.RELAY_IDLE_POLL_SECONDS
        while not self.stopping.is_set():
            heartbeat.tick()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            for _ in self._listen.notifies(
                timeout=min(remaining, WAIT_SLICE_SECONDS), stop_after=1
            ):
                return

    def back_off(self) -> None:
        """Called by run after a failure: sleep, doubling each time up to the cap."""
        log.info("relay reconnecting in %.1fs", self._delay)
        self.stopping.wait(self._delay)
        self._delay = min(self._delay * 2, RECONNECT_MAX_SECONDS)

    def close(self) -> None:
        """Called by run after a failure and at the end: close everything, quietly."""
        connections = [self._listen] + [conn for conn, _ in self._pairs]
        for _, publisher in self._pairs:
            publisher.close()
        for conn in connections:
            if conn is not None:
                with suppress(psycopg.Error):
                    conn.close()
        self._listen, self._pairs = None, []

    def stop(self, *_args) -> None:
        """Called on SIGTERM/SIGINT: finish the current batch, then return from run."""
        log.info("relay stopping")
        self.stopping.set()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


def run(settings: Settings) -> None:
    """Entry point of `python -m consumers relay`: relay until SIGTERM or Ctrl-C."""
    relay = Relay(settings)
    signal.signal(signal.SIGTERM, relay.stop)
    signal.signal(signal.SIGINT, relay.stop)
    relay.run()
