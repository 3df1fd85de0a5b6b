"""Invariants 1 and 2 under concurrency: four assignment consumers in separate processes."""

from __future__ import annotations

import threading

import pytest

from common import resources
from common.adapters import broker
from common.adapters.presence import Presence
from tests import factories
from tests.processes import eventually, running

pytestmark = pytest.mark.slow


def publish_events(settings, events) -> None:
    with broker.ConfirmingPublisher(settings, "test-producer") as publisher:
        for start in range(0, len(events), 500):
            chunk = [
                broker.Message(e.event_id, broker.encode(factories.message(e)))
                for e in events[start : start + 500]
            ]
            assert len(publisher.publish_batch(broker.OUTBOUND, chunk)) == len(chunk)


def stored(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM dedup_events").fetchone()["n"]


class Sampler(threading.Thread):
    """Samples live work per operator and live owners per event until stopped."""

    def __init__(self, settings):
        super().__init__(daemon=True)
        self.conn = resources.assignment_connection(settings, autocommit=True)
        self.stopped = threading.Event()
        self.max_live = 0
        self.max_owners = 0
        self.samples = 0

    def run(self):
        while not self.stopped.is_set():
            live = factories.live_by_user(self.conn)
            self.max_live = max([self.max_live, *live.values()])
            owners = self.conn.execute(
                "SELECT coalesce(max(n), 0) AS m FROM (SELECT count(*) AS n FROM assignments "
                "WHERE status = 'pending' AND NOT deleted GROUP BY event_id) t"
            ).fetchone()["m"]
            self.max_owners = max(self.max_owners, owners)
            self.samples += 1


def test_four_consumers_racing_never_pass_the_cap_nor_give_an_event_two_owners(settings):
    conn = resources.assignment_connection(settings, autocommit=True)
    presence = Presence(resources.redis_client(settings), settings)
    operators = factories.add_operators(conn, 3, "US")
    factories.make_available(conn, presence, operators)
    events = [factories.event("NA", severity=1 + i % 5) for i in range(2000)]
    sampler = Sampler(settings)
    sampler.start()
    with running(settings, "assignment", copies=4,
                 ASSIGNMENT_BATCH_SIZE=50, BACKFILL_SWEEP_SECONDS=0.5):
        publish_events(settings, events)
        eventually(lambda: stored(conn) == 2000, message="all 2000 events stored")
        eventually(lambda: sum(factories.live_by_user(conn).values()) == 150)
    sampler.stopped.set()
    sampler.join()
    assert sampler.samples > 10
    assert sampler.max_live <= 50
    assert sampler.max_owners == 1
    assert factories.live_by_user(conn) == {op: 50 for op in operators}
    assert factories.waiting_count(conn) == 1850
    loads = conn.execute("SELECT user_id, live FROM operator_load WHERE user_id = ANY(%s)",
                         [operators]).fetchall()
    assert {row["user_id"]: row["live"] for row in loads} == {op: 50 for op in operators}


def test_cap_holds_when_redis_counters_are_wiped_while_consumers_race(settings):
    conn = resources.assignment_connection(settings, autocommit=True)
    presence = Presence(resources.redis_client(settings), settings)
    operators = factories.add_operators(conn, 2, "US")
    factories.make_available(conn, presence, operators)
    stop = threading.Event()

    def wipe_counters():
        # Redis forgets every count again and again: only PostgreSQL can hold the cap now.
        while not stop.is_set():
            presence.client.delete(presence.counts_key)
            stop.wait(0.01)

    wiper = threading.Thread(target=wipe_counters, daemon=True)
    wiper.start()
    with running(settings, "assignment", copies=3,
                 ASSIGNMENT_BATCH_SIZE=40, BACKFILL_SWEEP_SECONDS=0.3):
        publish_events(settings, [factories.event("NA") for _ in range(600)])
        eventually(lambda: stored(conn) == 600, message="all 600 events stored")
        eventually(lambda: sum(factories.live_by_user(conn).values()) == 100)
        stop.set()
        wiper.join()
    assert factories.live_by_user(conn) == {op: 50 for op in operators}
    assert factories.waiting_count(conn) == 500
