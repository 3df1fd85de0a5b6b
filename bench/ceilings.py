"""The machine's ceilings, measured in the same run as the figures they put in proportion.

On a shared 2-core machine a figure alone says little; beside what the bare servers do at
that moment it reads as a ratio. Each ceiling uses the servers the system uses, with nothing
of ours in between but the same client libraries:
- confirmed publishes/s and consumes/s on a bare quorum queue (pika, batches in flight);
- batched inserts/s on bare PostgreSQL (INSERT ... SELECT unnest, a commit per batch);
- pipelined Lua script calls/s on bare Redis;
- the CPU itself: JSON round trips/s of one event in pure Python on one core. No server
  is in it, so it says how fast the cores run at that moment (on this machine the same
  code's CPU per event has varied by half from one run to the next), where the other
  ceilings mix that with their servers' I/O.

Beside the rates, the floors of insert -> assigned latency at 500 events/s, through the same
servers and client libraries (`floors`). That figure's events arrive in steps of 25 every
50 ms (bench/pipeline.py), so each floor carries one such step, bare, with nothing of ours
in between; both are timed from the first process's side:
- 25 events made (their created_at), COPied into relay_service.events and committed, until
  another connection hears the insert trigger's NOTIFY (what the relay waits on);
- 25 events' bodies published with confirms to a quorum queue, until a consumer in another
  process has the middle one, the 13th (the median event of the step cannot be assigned
  before it is delivered).
Their sum is a floor for the p50 at 500/s, not an estimate: it leaves out the relay's claim
and encoding, the consumer's reading and gather, and every wake-up between our processes.
Decision -> `Viewed` has its own floor: a one-row transaction's commit (the decision's) and
one message through the quorum queue to another process (the inbound consumer).
Called by bench.__main__; `python -m bench.ceilings` prints them alone.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import random
import statistics
import threading
import time
from datetime import UTC, datetime

from common.adapters import broker
from common.domain.events import random_event, to_message
from common.resources import redis_client, relay_connection
from common.services.generator import insert_events, random_events
from common.settings import Settings

QUEUE = "bench.ceiling"
HOP_QUEUE = "bench.hop"
# The events of one step at 500 events/s (bench/pipeline.py: 50 ms steps), and a pause
# between steps, so each meets servers at rest as a step at that rate does.
STEP = 25
HOP_PAUSE = 0.01
BATCH = 1000
SCRIPT = "return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)"


def queue_rates(settings: Settings, count: int) -> tuple[float, float]:
    """(confirmed publishes/s, consumes/s) of `count` persistent 300-byte messages."""
    body = b"x" * 300
    with broker.ConfirmingPublisher(settings, "bench-ceiling", bases=[QUEUE]) as publisher:
        publisher.ensure_open()
        start = time.perf_counter()
        for first in range(0, count, BATCH):
            batch = [broker.Message(i, body) for i in range(first, min(first + BATCH, count))]
            confirmed = publisher.publish_batch(QUEUE, batch)
            if len(confirmed) != len(batch):
                raise RuntimeError(f"ceiling: {len(batch) - len(confirmed)} publishes refused")
        published = count / (time.perf_counter() - start)
    connection = broker.connect(settings, "bench-ceiling-consumer")
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=BATCH)
        start = time.perf_counter()
        stream = channel.consume(settings.name(QUEUE), inactivity_timeout=10)
        for seen, (method, _props, _body) in enumerate(stream, start=1):
            if method is None:
                raise RuntimeError(f"ceiling: only {seen - 1} of {count} messages came back")
            if seen % 100 == 0 or seen == count:
                channel.basic_ack(method.delivery_tag, multiple=True)
            if seen == count:
                break
        consumed = count / (time.perf_counter() - start)
        channel.cancel()
        for queue in (settings.name(QUEUE), broker.dlq_name(settings.name(QUEUE))):
            channel.queue_delete(queue)
    finally:
        connection.close()
    return published, consumed


def postgres_inserts(settings: Settings, count: int) -> float:
    """Rows/s inserted in batches of BATCH, one committed transaction per batch."""
    with relay_connection(settings, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_ceiling (id bigint, payload text)")
        start = time.perf_counter()
        for first in range(0, count, BATCH):
            ids = list(range(first, min(first + BATCH, count)))
            with conn.transaction():
                conn.execute("INSERT INTO bench_ceiling SELECT i, 'camera event ' || i "
                             "FROM unnest(%s::bigint[]) i", [ids])
        rate = count / (time.perf_counter() - start)
        conn.execute("DROP TABLE bench_ceiling")
    return rate


def redis_calls(settings: Settings, count: int) -> float:
    """Lua script calls/s, pipelined BATCH at a time."""
    client = redis_client(settings)
    key = settings.name("bench.ceiling")
    script = client.register_script(SCRIPT)
    script(keys=[key], args=["warm"])
    start = time.perf_counter()
    for first in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(first, min(first + BATCH, count)):
            script(keys=[key], args=[i % 50], client=pipe)
        pipe.execute()
    rate = count / (time.perf_counter() - start)
    client.delete(key)
    return rate


# One event's body as the relay publishes it, from the generator's own rules.
EVENT = to_message(random_event(random.Random(0), datetime(2026, 11, 30, tzinfo=UTC)))


def cpu_round_trips(count: int) -> float:
    """json.dumps then json.loads of one event, per second, on this thread."""
    dumps, loads, event = json.dumps, json.loads, EVENT
    start = time.perf_counter()
    for _ in range(count):
        loads(dumps(event))
    return count / (time.perf_counter() - start)


def notify_hops(settings: Settings, count: int, step: int = STEP) -> list[float]:
    """ms from making `step` events (their created_at) through their COPY and commit until a
    connection LISTENing on the insert trigger's channel has the NOTIFY, `count` times."""
    heard: queue.Queue[float] = queue.Queue()
    with relay_connection(settings, autocommit=True) as listener, \
            relay_connection(settings, autocommit=True) as producer:
        listener.execute("LISTEN events_inserted")

        def listen() -> None:  # one NOTIFY per INSERT statement
            for _ in listener.notifies(timeout=count * 1.0 + 10, stop_after=count):
                heard.put(time.perf_counter())

        thread = threading.Thread(target=listen, name="bench-listener", daemon=True)
        thread.start()
        hops = []
        for _ in range(count):
            start = time.perf_counter()
            insert_events(producer, random_events(step))
            hops.append((heard.get(timeout=10) - start) * 1000)
            time.sleep(HOP_PAUSE)
        thread.join(timeout=10)
    return hops


def _consume_steps(settings: Settings, count: int, step: int, times) -> None:
    """In a process of its own, as the assignment consumer is: take `count` steps of `step`
    deliveries, sending the monotonic clock (system-wide on Linux) at the middle one of
    each."""
    connection = broker.connect(settings, "bench-hop-consumer")
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=step * 4)
        times.send("ready")
        stream = channel.consume(settings.name(HOP_QUEUE), inactivity_timeout=10)
        for seen, (method, _props, _body) in enumerate(stream, start=1):
            if method is None:
                return
            if seen % step == (step + 1) // 2 % step:
                times.send(time.perf_counter())
            if seen % step == 0:
                channel.basic_ack(method.delivery_tag, multiple=True)
            if seen == count * step:
                return
    finally:
        connection.close()


def queue_hops(settings: Settings, count: int, step: int = STEP) -> list[float]:
    """ms from a confirmed publish of `step` events' bodies to a quorum queue until a
    consumer in another process has the middle one, `count` times."""
    body = broker.encode(EVENT)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    with broker.ConfirmingPublisher(settings, "bench-hop", bases=[HOP_QUEUE]) as publisher:
        publisher.ensure_open()  # declares the queue before the consumer subscribes
        consumer = context.Process(target=_consume_steps, args=(settings, count, step, theirs),
                                   name="bench-hop-consumer", daemon=True)
        consumer.start()
        try:
            if not ours.poll(60) or ours.recv() != "ready":
                raise RuntimeError("floor: the hop consumer did not start")
            time.sleep(0.2)  # its subscription reaches the broker
            hops = []
            for i in range(count):
                batch = [broker.Message((i, j), body) for j in range(step)]
                start = time.perf_counter()
                if len(publisher.publish_batch(HOP_QUEUE, batch)) != step:
                    raise RuntimeError("floor: a publish of one step was refused")
                if not ours.poll(10):
                    raise RuntimeError("floor: a step was not delivered within 10 s")
                hops.append((ours.recv() - start) * 1000)
                time.sleep(HOP_PAUSE)
        finally:
            consumer.join(timeout=10)
            if consumer.is_alive():
                consumer.kill()
    connection = broker.connect(settings, "bench-hop-cleanup")
    try:
        channel = connection.channel()
        for name in (settings.name(HOP_QUEUE), broker.dlq_name(settings.name(HOP_QUEUE))):
            channel.queue_delete(name)
    finally:
        connection.close()
    return hops


def commit_trips(settings: Settings, count: int) -> list[float]:
    """ms of a one-row INSERT committed on its own (autocommit), the round trip, `count`
    times."""
    with relay_connection(settings, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit (id bigint, at timestamptz)")
        trips = []
        for i in range(count):
            start = time.perf_counter()
            conn.execute("INSERT INTO bench_commit VALUES (%s, now())", [i])
            trips.append((time.perf_counter() - start) * 1000)
            time.sleep(HOP_PAUSE)
        conn.execute("DROP TABLE bench_commit")
    return trips


def floors(settings: Settings, quick: bool) -> dict:
    """Each hop's median per run: the two hops of a 500/s step (notify_ms, queue_hop_ms),
    and what one decision needs (commit_ms: its transaction's commit; queue_hop_one_ms: one
    message through the quorum queue to another process). The median of 3 runs (1 when
    quick), as {name: spread}."""
    from bench.stack import spread

    runs, count = (1, 60) if quick else (3, 150)
    hops = {"notify_ms": lambda: notify_hops(settings, count),
            "queue_hop_ms": lambda: queue_hops(settings, count),
            "commit_ms": lambda: commit_trips(settings, count),
            "queue_hop_one_ms": lambda: queue_hops(settings, count, step=1)}
    return {name: spread([statistics.median(hop()) for _ in range(runs)])
            for name, hop in hops.items()}


def measure(settings: Settings, quick: bool) -> dict:
    """Each ceiling, median of 3 runs (1 when quick), as {name: spread}."""
    from bench.stack import spread

    runs = 1 if quick else 3
    messages, rows = (5_000, 20_000) if quick else (20_000, 100_000)
    queue = [queue_rates(settings, messages) for _ in range(runs)]
    return {
        "queue_publishes_per_s": spread([p for p, _ in queue]),
        "queue_consumes_per_s": spread([c for _, c in queue]),
        "postgres_inserts_per_s": spread([postgres_inserts(settings, rows) for _ in range(runs)]),
        "redis_calls_per_s": spread([redis_calls(settings, rows) for _ in range(runs)]),
        "cpu_json_round_trips_per_s": spread([cpu_round_trips(rows) for _ in range(runs)]),
    }


def main() -> None:
    from bench.stack import fresh

    with fresh("ceilings") as settings:
        for name, figure in measure(settings, quick=True).items():
            print(f"{name}: {figure['median']:,.0f}")
        for name, figure in floors(settings, quick=True).items():
            print(f"{name}: {figure['median']:.2f}")


if __name__ == "__main__":
    main()
