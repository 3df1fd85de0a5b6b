"""Issue 3's numbers: insert -> assigned, relay included, one assignment consumer.

- throughput: a backlog of events inserted at once until every one is assigned;
- latency at 500 events/s offered: p50 and p99 of assignment time minus insert time;
400 synthetic operators (100 per region) at the cap of 50, all available, in the
benchmark's own namespace and databases. Run with `make bench` or
`python -m bench.bench_assignment`.
"""

from __future__ import annotations

import random
import time

from bench.common_setup import bench_settings, median, processes
from common import resources
from common.adapters.presence import Presence
from common.domain.routing import USER_REGIONS
from common.services.generator import generate_events
from common.services.reconcile import reconcile_counters
from tests.processes import eventually

OPERATORS_PER_REGION = 100
RUNS = 3


def add_operators(conn, presence: Presence) -> None:
    user_id = 10_000
    with conn.transaction(), conn.cursor() as cur:
        for region in USER_REGIONS:
            ids = list(range(user_id, user_id + OPERATORS_PER_REGION))
            user_id += OPERATORS_PER_REGION
            cur.execute(
                "INSERT INTO users (id, username, name, role, region, password_hash, available) "
                "SELECT id, 'bench' || id, 'Bench ' || id, 'operator', %s, 'x', true "
                "FROM unnest(%s::int[]) id", [region, ids])
            cur.execute("INSERT INTO operator_load (user_id) SELECT unnest(%s::int[])", [ids])
            # A live session row each: PostgreSQL routes only to operators who have one.
            cur.execute("INSERT INTO sessions (token_hash, user_id, expires_at) "
                        "SELECT sha256(convert_to(gen_random_uuid()::text, 'UTF8')), id, "
                        "now() + interval '1 hour' FROM unnest(%s::int[]) id", [ids])
            for uid in ids:
                presence.touch_session(uid, ttl=3600)
                presence.set_available(uid, region)


def assigned(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM assignments").fetchone()["n"]


def latencies(conn) -> tuple[float, float]:
    row = conn.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50, "
        "percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99 FROM ("
        " SELECT extract(epoch FROM a.created_at - e.created_at) * 1000 AS d"
        " FROM assignments a JOIN events e USING (event_id)) t").fetchone()
    return row["p50"], row["p99"]


def offered_load(relay_conn, rate: int, seconds: float) -> int:
    """Insert `rate` events/s in 50 ms steps for `seconds`."""
    rng, per_step, sent = random.Random(1), max(1, rate // 20), 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        generate_events(relay_conn, per_step, rng=rng, report=lambda _: None)
        sent += per_step
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    return sent


def free_everyone(conn, presence: Presence) -> None:
    """Between runs: every live assignment decided at once, loads back to zero (setup only;
    decisions through the service are measured by bench_backfill)."""
    conn.execute("UPDATE assignments SET status = 'approved', decided_at = now() "
                  "WHERE status = 'pending' AND NOT deleted")
    conn.execute("UPDATE operator_load SET live = 0")
    reconcile_counters(conn, presence)


def throughput(relay_conn, conn, presence: Presence, backlog: int) -> float:
    """Insert a backlog at once; events/s until every one is assigned."""
    free_everyone(conn, presence)
    target = assigned(conn) + backlog
    start = time.monotonic()
    generate_events(relay_conn, backlog, report=lambda _: None)
    eventually(lambda: assigned(conn) >= target, timeout=300, interval=0.02)
    return backlog / (time.monotonic() - start)


def main() -> None:
    with bench_settings("assign") as settings:
        relay_conn = resources.relay_connection(settings, autocommit=True)
        conn = resources.assignment_connection(settings, autocommit=True)
        presence = Presence(resources.redis_client(settings), settings)
        add_operators(conn, presence)
        with processes(settings, "relay", "assignment"):
            sent = offered_load(relay_conn, rate=500, seconds=10)
            eventually(lambda: assigned(conn) >= sent, timeout=300, interval=0.02)
            p50, p99 = latencies(conn)
            print(f"500 events/s offered, {sent} events: insert -> assigned "
                  f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (targets 50 / 250)")
            # 20,000 places; 15,000 events leave room in every region (regions are random).
            rates = [throughput(relay_conn, conn, presence, 15_000) for _ in range(RUNS)]
            print(f"throughput, backlog of 15,000 inserted -> all assigned: median "
                  f"{median(rates):,.0f} events/s over {RUNS} runs "
                  f"({', '.join(f'{r:,.0f}' for r in rates)}; target 5,000)")


if __name__ == "__main__":
    main()
