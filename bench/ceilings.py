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
Called by bench.__main__; `python -m bench.ceilings` prints them alone.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime

from common.adapters import broker
from common.domain.events import random_event, to_message
from common.resources import redis_client, relay_connection
from common.settings import Settings

QUEUE = "bench.ceiling"
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


if __name__ == "__main__":
    main()
