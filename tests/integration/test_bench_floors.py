"""The latency floors of `make bench` (bench/ceilings.py) carry whole steps through the real
servers: each hop waits for its step's NOTIFY or delivery, one figure per step, and the
queue it used is gone afterwards. No time is asserted: speed lives in the benchmark."""

from __future__ import annotations

import pika.exceptions

from bench import ceilings
from common.adapters import broker


def queue_exists(settings, name: str) -> bool:
    connection = broker.connect(settings, "test-floors")
    try:
        connection.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as closed:
        assert closed.reply_code == 404
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_a_step_is_heard_once_per_insert(settings):
    hops = ceilings.notify_hops(settings, count=4, step=5)

    assert len(hops) == 4 and all(hop > 0 for hop in hops)


def test_a_step_crosses_the_queue_to_another_process_and_the_queue_goes(settings):
    hops = ceilings.queue_hops(settings, count=3, step=5)

    assert len(hops) == 3 and all(hop > 0 for hop in hops)
    for name in (settings.name(ceilings.HOP_QUEUE),
                 broker.dlq_name(settings.name(ceilings.HOP_QUEUE))):
        assert not queue_exists(settings, name)


def test_a_commit_trip_is_measured_and_its_table_goes(settings, conn):
    trips = ceilings.commit_trips(settings, count=3)

    assert len(trips) == 3 and all(trip > 0 for trip in trips)
    with ceilings.relay_connection(settings, autocommit=True) as relay:
        assert relay.execute("SELECT to_regclass('bench_commit') AS t").fetchone()["t"] is None
