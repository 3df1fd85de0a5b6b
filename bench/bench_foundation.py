"""Issue 2's numbers: generator inserts, relay drain rate, idle insert → events.outbound latency.

- the generator inserting 100,000 events (target: under 10 s);
- the relay draining a backlog of 100,000 events to RabbitMQ (target: 10,000 events/s);
- an event inserted into an idle system, on events.outbound (target: 20 ms median), with
  the long-running relay (`python -m consumers relay`) running.
Own namespace and databases, dropped afterwards. Run with `make bench` or
`python -m bench.bench_foundation`.
"""

from __future__ import annotations

import statistics
import time

from bench.common_setup import bench_settings, median, processes
from common.adapters import broker
from common.resources import publisher, relay_connection
from common.services.generator import generate_events
from common.services.relay import relay_pending, relay_pending_parallel

EVENTS = 100_000
ROUNDS = 3
LATENCY_SAMPLES = 200


def quiet(_line: str) -> None:
    pass


def bench_generator(settings) -> list[float]:
    """Seconds to insert EVENTS events, per round."""
    times = []
    with relay_connection(settings) as conn:
        for _ in range(ROUNDS):
            start = time.perf_counter()
            generate_events(conn, EVENTS, report=quiet)
            times.append(time.perf_counter() - start)
            conn.execute("TRUNCATE events")
            conn.commit()
    return times


def bench_drain(settings, workers: int) -> float:
    """Events/s for `workers` relay workers draining a backlog of EVENTS."""
    with relay_connection(settings) as conn:
        conn.execute("TRUNCATE events")
        conn.commit()
        generate_events(conn, EVENTS, report=quiet)
    pairs = [
        (relay_connection(settings), publisher(settings, f"bench-relay-{i}"))
        for i in range(workers)
    ]
    try:
        for _, pub in pairs:
            pub.ensure_open()
        start = time.perf_counter()
        if workers == 1:
            count = relay_pending(*pairs[0], settings)
        else:
            count = relay_pending_parallel(pairs, settings)
        elapsed = time.perf_counter() - start
    finally:
        for conn, pub in pairs:
            pub.close()
            conn.close()
    assert count == EVENTS, f"drained {count} of {EVENTS}"
    purge(settings)
    return count / elapsed


def purge(settings) -> None:
    connection = broker.connect(settings, "bench-purge")
    connection.channel().queue_purge(settings.name(broker.OUTBOUND))
    connection.close()


def bench_latency(settings) -> list[float]:
    """Milliseconds from an idle insert to its message arriving from events.outbound."""
    connection = broker.connect(settings, "bench-reader")
    channel = connection.channel()
    broker.declare_queues(channel, settings, [broker.OUTBOUND])
    stream = channel.consume(settings.name(broker.OUTBOUND), inactivity_timeout=10)
    samples = []
    with relay_connection(settings) as conn, processes(settings, "relay"):
        for _ in range(LATENCY_SAMPLES):
            time.sleep(0.05)  # idle between events
            start = time.perf_counter()
            generate_events(conn, 1, report=quiet)
            method, _properties, _body = next(stream)
            if method is None:
                raise TimeoutError("an event did not arrive within 10 s")
            samples.append((time.perf_counter() - start) * 1000)
            channel.basic_ack(method.delivery_tag)
    channel.cancel()
    connection.close()
    return samples


def main() -> None:
    with bench_settings("foundation", LOG_LEVEL="WARNING") as settings:
        inserts = bench_generator(settings)
        print(
            f"generator: {EVENTS} events in {median(inserts):.2f} s median "
            f"(rounds: {', '.join(f'{t:.2f}' for t in inserts)}; target < 10 s)"
        )
        single = bench_drain(settings, workers=1)
        print(f"relay drain, 1 worker: {single:,.0f} events/s")
        rates = [bench_drain(settings, workers=2) for _ in range(ROUNDS)]
        print(
            f"relay drain, 2 workers (the long-running relay's setting): "
            f"{median(rates):,.0f} events/s median "
            f"(rounds: {', '.join(f'{r:,.0f}' for r in rates)}; target >= 10,000/s)"
        )
        with relay_connection(settings) as conn:
            conn.execute("TRUNCATE events")
            conn.commit()
        latencies = bench_latency(settings)
        p95 = statistics.quantiles(latencies, n=20)[-1]
        print(
            f"idle insert -> on events.outbound: {median(latencies):.1f} ms median, "
            f"p95 {p95:.1f} ms over {len(latencies)} events (target: 20 ms median)"
        )


if __name__ == "__main__":
    main()
