"""A background thread of the API worker, woken by requests, with its own connection.

Base of the fast path (common/api/fastpath.py) and the backfill (common/api/backfill.py):
a request commits, calls `wake` (never blocks) and answers; the thread does the slow part
with a PostgreSQL connection of its own, outside the request pool, so a slow broker or a
long backfill never holds what requests need. Woken by an Event, so no poll interval adds
latency.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import psycopg

from common.resources import assignment_connection
from common.settings import Settings

log = logging.getLogger(__name__)


class Worker:
    """One daemon thread running `_step` each time it is woken (or after `_timeout`)."""

    def __init__(self, settings: Settings, name: str):
        self.settings = settings
        self.name = name
        self._conn: psycopg.Connection | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._requested = 0
        self._done = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Finish what was asked (for a few seconds at most), stop the thread, close what
        it opened."""
        if self._thread.is_alive():
            self.settle(min(timeout, 5.0))
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s still busy at shutdown; left to the sweeps", self.name)
            return
        self._cleanup()
        self.drop_connection()

    def wake(self) -> None:
        with self._progress:
            self._requested += 1
        self._wake.set()

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until every wake before this call has been handled (tests and benches)."""
        with self._progress:
            wanted = self._requested
            return self._progress.wait_for(lambda: self._done >= wanted, timeout)

    def connection(self) -> psycopg.Connection:
        """This thread's own autocommit connection, reopened after a failure."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.drop_connection()
            self._conn = assignment_connection(self.settings, autocommit=True,
                                               connect_timeout=5)
        return self._conn

    def drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._timeout())
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._progress:
                started = self._requested
            try:
                self._step()
            except Exception:  # noqa: BLE001 - the thread must outlive any one failure
                log.exception("%s: step failed; the sweeps catch up", self.name)
                self.drop_connection()
            with self._progress:
                self._done = started
                self._progress.notify_all()

    def _timeout(self) -> float | None:
        return None

    def _step(self) -> None:
        raise NotImplementedError

    def _cleanup(self) -> None:
        pass
