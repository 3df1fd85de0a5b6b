"""Heartbeats of the long-running processes (DESIGN.md, Operations).

Each long-running process (`relay`, `assignment`, `inbound`, `ack`, `deployments`) calls
`start(settings, NAME)` once; a daemon thread then beats every HEARTBEAT_SECONDS, but only
while the process's main loop has called `tick()` recently: a hung loop stops beating even
though the thread lives. A beat is
- a field `<process>:<host>:<pid>` → `{"time": <unix seconds>}` of the Redis hash
  `settings.name("heartbeats")`, which `read_processes` (the API's /health) summarises, and
- the modification time of a local file, which `fresh_locally` (the compose health check,
  `python -m consumers healthcheck NAME`) reads without any server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import redis

from common.settings import Settings

log = logging.getLogger(__name__)

PROCESSES = ("relay", "assignment", "inbound", "ack", "deployments")
# A process is stale after this many missed beats (DESIGN.md).
MISSED_BEATS = 3
# A main loop that has not ticked for this many beat periods counts as hung.
HUNG_AFTER_BEATS = 2
# Fields older than this many beat periods are removed by readers: processes long gone.
FORGET_AFTER_BEATS = 120


def key(settings: Settings) -> str:
    return settings.name("heartbeats")


def local_file(settings: Settings, process: str) -> Path:
    """The file a process of this namespace touches on each beat."""
    return Path(settings.HEARTBEAT_DIR) / f"{settings.NAMESPACE or '_'}.{process}"


class Heartbeat:
    """The beating thread of one process. Built by `start`; tests may build their own."""

    def __init__(self, settings: Settings, process: str, client: redis.Redis | None = None):
        self.settings = settings
        self.process = process
        self.field = f"{process}:{socket.gethostname()}:{os.getpid()}"
        self.file = local_file(settings, process)
        self._client = client
        self._ticked = time.monotonic()
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{process}",
                                        daemon=True)

    def start(self) -> Heartbeat:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def tick(self) -> None:
        """Called by the main loop on each turn: it is alive."""
        self._ticked = time.monotonic()

    def stop(self) -> None:
        """Stop beating and remove this process's field (a clean exit is not `stale`)."""
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(redis.RedisError):
            self.client().hdel(key(self.settings), self.field)

    def client(self) -> redis.Redis:
        if self._client is None:
            from common.resources import redis_client

            self._client = redis_client(self.settings)
        return self._client

    def alive(self) -> bool:
        period = self.settings.HEARTBEAT_SECONDS
        return time.monotonic() - self._ticked <= HUNG_AFTER_BEATS * period

    def beat(self) -> None:
        """One beat, if the main loop is alive: the local file, then Redis."""
        if not self.alive():
            return
        self.file.touch()
        value = json.dumps({"time": time.time()})
        try:
            self.client().hset(key(self.settings), self.field, value)
        except redis.RedisError as error:
            if not self._failing:
                log.warning("heartbeat of %s not written to Redis: %s", self.process, error)
            self._failing = True
            return
        if self._failing:
            log.info("heartbeat of %s written to Redis again", self.process)
        self._failing = False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(self.settings.HEARTBEAT_SECONDS)


_current: Heartbeat | None = None


def start(settings: Settings, process: str) -> Heartbeat:
    """Called once by a long-running process's entry point: beat from now on."""
    global _current
    _current = Heartbeat(settings, process).start()
    return _current


def tick() -> None:
    """Called by a main loop on each turn; nothing when no heartbeat was started."""
    if _current is not None:
        _current.tick()


def fresh_locally(settings: Settings, process: str) -> bool:
    """Has a process NAME of this namespace on this machine beaten within three periods?"""
    try:
        age = time.time() - local_file(settings, process).stat().st_mtime
    except FileNotFoundError:
        return False
    return age <= MISSED_BEATS * settings.HEARTBEAT_SECONDS


def read_processes(client: redis.Redis, settings: Settings, now: float | None = None) -> dict:
    """Each process of PROCESSES → {status ok|stale|missing, instances, last_seen}.

    Called by the API's /health. `instances` counts the copies beating in time; fields of
    processes long gone are removed on the way.
    """
    now = time.time() if now is None else now
    period = settings.HEARTBEAT_SECONDS
    beats: dict[str, list[float]] = {name: [] for name in PROCESSES}
    forgotten = []
    for field, value in client.hgetall(key(settings)).items():
        field = field.decode() if isinstance(field, bytes) else field
        seen = _time_of(value)
        if seen is None or now - seen > FORGET_AFTER_BEATS * period:
            forgotten.append(field)
        elif field.split(":", 1)[0] in beats:
            beats[field.split(":", 1)[0]].append(seen)
    if forgotten:
        client.hdel(key(settings), *forgotten)
    return {name: _summary(times, now, period) for name, times in beats.items()}


def _summary(times: list[float], now: float, period: float) -> dict:
    if not times:
        return {"status": "missing", "instances": 0, "last_seen": None}
    fresh = [t for t in times if now - t <= MISSED_BEATS * period]
    last = datetime.fromtimestamp(max(times), UTC).isoformat()
    return {"status": "ok" if fresh else "stale", "instances": len(fresh), "last_seen": last}


def _time_of(value) -> float | None:
    try:
        return float(json.loads(value)["time"])
    except (ValueError, TypeError, KeyError):
        return None
