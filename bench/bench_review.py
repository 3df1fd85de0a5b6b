"""Issue 4's numbers: the review loop's fast path, and expire-assignments at scale.

- decision -> source event 'Viewed' through the fast path (target: p50 under 200 ms), with
  `python -m consumers inbound` and `python -m consumers ack` running as processes;
- expire-assignments releasing and re-routing 10,000 stale assignments, 200 synthetic
  operators x 50 (target: under 10 s).
Each part has its own NAMESPACE and databases, dropped afterwards. Run with
`python -m bench.bench_review` (or `make bench`).
"""

from __future__ import annotations

import statistics
import time

from bench.common_setup import bench_settings, processes
from common.adapters.presence import Presence
from common.resources import assignment_connection, publisher, redis_client, relay_connection
from common.services import assignment, outbox, releases
from common.settings import Settings
from tests.factories import add_operators, event, make_available
from tests.helpers import decide, insert_source

DECISIONS = 200
OPERATORS, PER_OPERATOR = 200, 50


def routed_events(settings: Settings, conn, presence: Presence, count: int, region: str):
    events = [event(region) for _ in range(count)]
    for start in range(0, count, 1000):
        assignment.receive(conn, presence, settings, events[start:start + 1000])
    return events


def wait_viewed(relay, event_id, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = relay.execute("SELECT state FROM events WHERE event_id = %s", [event_id]).fetchone()
        if row["state"] == "Viewed":
            return
        time.sleep(0.001)
    raise TimeoutError(f"event {event_id} not Viewed within {timeout}s")


def bench_fast_path() -> list[float]:
    """Milliseconds from a decision's commit to its source event Viewed, per decision."""
    with bench_settings("review") as settings, \
            assignment_connection(settings, autocommit=True) as conn, \
            relay_connection(settings, autocommit=True) as relay, \
            publisher(settings, "bench-fast-path") as pub:
        presence = Presence(redis_client(settings), settings)
        make_available(conn, presence, add_operators(conn, 5, region="EU"), ttl=3600)
        events = routed_events(settings, conn, presence, DECISIONS, "EU")
        insert_source(settings, events)
        ids = [r["assignment_id"] for r in conn.execute(
            "SELECT assignment_id FROM assignments ORDER BY assignment_id")]
        pub.ensure_open()
        times = []
        with processes(settings, "inbound", "ack"):
            for assignment_id in ids:
                row = decide(settings, conn, assignment_id)
                start = time.perf_counter()
                outbox.publish_decided(conn, pub, settings, [assignment_id])
                wait_viewed(relay, row["event_id"])
                times.append((time.perf_counter() - start) * 1000)
        return times


def bench_expiry() -> tuple[float, dict, int]:
    """Seconds for expire-assignments over OPERATORS x PER_OPERATOR stale assignments."""
    with bench_settings("expiry") as settings, \
            assignment_connection(settings, autocommit=True) as conn:
        presence = Presence(redis_client(settings), settings)
        make_available(conn, presence, add_operators(conn, OPERATORS, region="US"), ttl=3600)
        routed_events(settings, conn, presence, OPERATORS * PER_OPERATOR, "NA")
        conn.execute("UPDATE assignments SET created_at = now() - interval '1 hour'")
        start = time.perf_counter()
        report = releases.expire_assignments(conn, presence, settings)
        elapsed = time.perf_counter() - start
        moved = conn.execute(
            "SELECT count(*) AS n FROM assignments a JOIN assignments r USING (event_id) "
            "WHERE NOT a.deleted AND r.deleted AND a.user_id <> r.user_id").fetchone()["n"]
        return elapsed, report, moved


def main() -> None:
    times = bench_fast_path()
    print(f"decision -> source Viewed (fast path, {len(times)} decisions): "
          f"p50 {statistics.median(times):.1f} ms, "
          f"p95 {statistics.quantiles(times, n=20)[-1]:.1f} ms (target p50 < 200 ms)")
    elapsed, report, moved = bench_expiry()
    print(f"expire-assignments: {report['released']} released, {report['assigned']} "
          f"re-assigned ({moved} to another operator) in {elapsed:.2f} s (target < 10 s)")


if __name__ == "__main__":
    main()
