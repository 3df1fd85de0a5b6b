"""Insert -> assigned through the real relay and assignment consumers, and the relay's drain.

- throughput: a backlog inserted at once, events/s until every one is assigned, with 1, 2
  and 4 assignment consumers (`python -m consumers assignment`, copies);
- latency at offered loads: events inserted at a steady rate in 50 ms steps; p50/p95/p99
  of assignment `created_at` minus event `created_at`, both PostgreSQL clocks;
- relay drain: 2 relay workers (the long-running relay's setting) draining a backlog.
400 synthetic operators (100 per region) under the cap of 50, all with live sessions.
Called by bench.__main__.
"""

from __future__ import annotations

import random
import sys
import time

from bench import cpu
from bench.stack import add_operators, consumers, fresh, rss_of, spread
from common import resources
from common.adapters import broker
from common.adapters.presence import Presence
from common.services.generator import generate_events, insert_events, random_events
from common.services.reconcile import reconcile_counters
from common.services.relay import relay_pending_parallel
from tests.processes import eventually

OPERATORS_PER_REGION = 100
LOADS = (100, 500, 2000)
CONSUMERS = (1, 2, 4)


def _quiet(_line: str) -> None:
    pass


def assigned(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM assignments").fetchone()["n"]


def last_assignment(conn) -> int:
    """The highest assignment id so far (one probe of the primary key)."""
    return conn.execute("SELECT coalesce(max(assignment_id), 0) AS n FROM assignments"
                        ).fetchone()["n"]


def wait_assigned(conn, after: int, count: int, interval: float, message: str) -> None:
    """Until `count` assignments with ids above `after` are visible.

    The benchmark's own poll must not compete with the pipeline for the two cores: a
    count(*) of the whole table every 10 ms took 5-16 ms each once it held a few runs'
    rows (a third to half of a core, on the machine under test). Each id is used once, so
    `count` new rows need the highest id to be at least `after + count`: that O(1) probe
    runs on every poll, and the exact count of this run's rows only once it passes.
    """
    def done() -> bool:
        if last_assignment(conn) - after < count:
            return False
        return conn.execute("SELECT count(*) AS n FROM assignments WHERE assignment_id > %s",
                            [after]).fetchone()["n"] >= count
    eventually(done, timeout=600, interval=interval, message=message)


def free_everyone(relay_conn, conn, presence: Presence) -> None:
    """Between runs (setup, not measured): every live assignment decided at once, loads
    back to zero, Redis counters rebuilt, and both databases vacuumed and analyzed.

    The vacuum keeps a run from measuring the cleanup of the runs before it. A backlog of
    15,000 leaves 15,000 new rows in each of five tables, and autovacuum's launcher takes
    them up at its next round (once a minute per database), which may fall in the next run:
    the latency at 500 events/s after three backlogs read p50 21-31 ms with that cleanup
    running beside it, and 14-15 ms without it (docs/decisions.md, "Floors for the latency
    goals, the busy cores, and autovacuum in the window"). A system at a steady 500 events/s pays its autovacuum a little at a time;
    `make soak` runs ten minutes with it."""
    conn.execute("UPDATE assignments SET status = 'approved', decided_at = now() "
                 "WHERE status = 'pending' AND NOT deleted")
    conn.execute("UPDATE operator_load SET live = 0")
    reconcile_counters(conn, presence)
    for database in (relay_conn, conn):  # autocommit: VACUUM runs outside a transaction
        database.execute("VACUUM (ANALYZE)")


def throughput(relay_conn, conn, presence: Presence, backlog: int,
               ours: dict[str, list[int]] | None = None, costs: list | None = None,
               phases: list | None = None) -> float:
    """Insert a backlog at once; events/s from the insert until every one is assigned.

    The clock starts at the insert (COPY, 10,000 rows per transaction, as the generator
    does). Making up the random rows is the benchmark's own work, done before: in the
    window it took 0.17 s of the 1.5-1.7 s a backlog of 15,000 needs, with the pipeline
    idle until the first 10,000 were made and committed. With `ours` (name -> PIDs), the
    CPU each spent per 1,000 events is appended to `costs` (bench.cpu). With `phases`, the
    window's two parts are appended: the head, from the insert to the start of the first
    assignment transaction (PostgreSQL's clock: the first COPY's commit, the relay's first
    batch, its delivery), and the rate over the rest of the window; and the share of the
    machine's cores busy over the whole window, with anyone's work."""
    free_everyone(relay_conn, conn, presence)
    after = last_assignment(conn)
    events = random_events(backlog)  # made up before the clock: see the docstring
    before = cpu.snapshot(ours or {})
    inserted_at = conn.execute("SELECT clock_timestamp() AS t").fetchone()["t"]
    start = time.monotonic()
    insert_events(relay_conn, events)
    wait_assigned(conn, after, backlog, 0.01, f"a backlog of {backlog} assigned")
    window = time.monotonic() - start
    spent = cpu.snapshot(ours or {})
    if costs is not None:
        costs.append(cpu.per_thousand(before, spent, backlog))
    if phases is not None:
        head = conn.execute("SELECT extract(epoch FROM min(created_at) - %s) AS s "
                            "FROM assignments WHERE assignment_id > %s",
                            [inserted_at, after]).fetchone()["s"]
        phases.append({"head_ms": float(head) * 1000,
                       "after_head_events_per_s": backlog / (window - float(head)),
                       "machine_busy_share": cpu.busy_share(before, spent, window)})
    return backlog / window


def _backends(conn, settings, generator: int) -> dict[str, list[int]]:
    """The PostgreSQL backends of the relay and the consumers (not the generator's, not the
    benchmark's own): all together (`postgres_ours`, in the CPU bound), and split by
    database (`postgres_relay_db`: the relay's claims and marks; `postgres_assignment_db`:
    the routers' and the bookkeeping's transactions), to say which side costs what."""
    split = {f"postgres_{side}_db": [pid for pid in cpu.backends(conn, [database])
                                     if pid != generator]
             for side, database in (("relay", settings.POSTGRES_DB_RELAY),
                                    ("assignment", settings.POSTGRES_DB_ASSIGNMENT))}
    return {"postgres_ours": [pid for pids in split.values() for pid in pids], **split}


def offered(relay_conn, rate: int, seconds: float) -> int:
    """Insert `rate` events/s in 50 ms steps for `seconds`; returns how many."""
    rng, sent = random.Random(), 0
    per_step = max(1, rate // 20)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        generate_events(relay_conn, per_step, rng=rng, report=_quiet)
        sent += per_step
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    return sent


def latency_run(relay_conn, conn, presence: Presence, rate: int, seconds: float) -> dict:
    """p50/p95/p99 insert -> assigned (ms) of the events of one run at `rate` events/s."""
    free_everyone(relay_conn, conn, presence)
    since = conn.execute("SELECT clock_timestamp() AS t").fetchone()["t"]
    after = last_assignment(conn)
    wait_assigned(conn, after, offered(relay_conn, rate, seconds), 0.05,
                  f"every event offered at {rate}/s assigned")
    return conn.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50, "
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY d) AS p95, "
        "percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99 FROM ("
        " SELECT extract(epoch FROM a.created_at - e.created_at) * 1000 AS d"
        " FROM assignments a JOIN events e USING (event_id) WHERE e.created_at >= %s) t",
        [since]).fetchone()


def relay_drain(quick: bool) -> dict:
    """Events/s of 2 relay workers draining a backlog to events.outbound, per run."""
    events, runs = (10_000, 1) if quick else (50_000, 3)
    rates = []
    with fresh("drain") as settings:
        for _ in range(runs):
            with resources.relay_connection(settings) as conn:
                generate_events(conn, events, report=_quiet)
            pairs = [(resources.relay_connection(settings),
                      resources.publisher(settings, f"bench-relay-{i}")) for i in range(2)]
            try:
                for _, pub in pairs:
                    pub.ensure_open()
                start = time.perf_counter()
                count = relay_pending_parallel(pairs, settings)
                rates.append(count / (time.perf_counter() - start))
            finally:
                for conn, pub in pairs:
                    pub.close()
                    conn.close()
            if count != events:
                raise RuntimeError(f"relay drained {count} of {events}")
            connection = broker.connect(settings, "bench-purge")
            connection.channel().queue_purge(settings.name(broker.OUTBOUND))
            connection.close()
    return spread(rates)


def measure(quick: bool) -> dict:
    """Throughput by consumers, latency by load, and each process's memory at the end."""
    backlog, runs, seconds = (2_000, 1, 2.0) if quick else (15_000, 3, 5.0)
    out: dict = {"by_consumers": {}, "latency_by_load": {}, "rss_mb": {}}
    with fresh("pipeline") as settings, \
            resources.relay_connection(settings, autocommit=True) as relay_conn, \
            resources.assignment_connection(settings, autocommit=True) as conn:
        presence = Presence(resources.redis_client(settings), settings)
        add_operators(conn, presence, OPERATORS_PER_REGION)
        with consumers(settings, "relay") as relay:
            for count in CONSUMERS:
                with consumers(settings, "assignment", copies=count) as procs:
                    throughput(relay_conn, conn, presence, 200)  # warm-up, not counted
                    ours = {"relay": [p.pid for p in relay], "assignment": [p.pid for p in procs],
                            **_backends(conn, settings, relay_conn.info.backend_pid)}
                    costs: list[dict] = []
                    phases: list[dict] = []
                    rates = [throughput(relay_conn, conn, presence, backlog, ours, costs, phases)
                             for _ in range(runs)]
                    out["by_consumers"][str(count)] = spread(rates)
                    print(f"  {count} assignment consumer(s): {rates}", file=sys.stderr)
                    if count == 1:
                        out["backlog_phases"] = {
                            name: spread([p[name] for p in phases]) for name in phases[0]}
                        out["cpu_ms_per_1000_events"] = {
                            name: spread([c[name] for c in costs]) for name in costs[0]}
                        for rate in LOADS:
                            figures = [latency_run(relay_conn, conn, presence, rate, seconds)
                                       for _ in range(runs)]
                            out["latency_by_load"][str(rate)] = {
                                p: spread([f[p] for f in figures]) for p in ("p50", "p95", "p99")}
                        out["rss_mb"].update(rss_of({"relay": relay, "assignment": procs}))
        # The same backlog through two relays (LISTEN/NOTIFY claims with SKIP LOCKED) and
        # one assignment consumer, beside the single relay's figure above.
        with consumers(settings, "relay", copies=2), consumers(settings, "assignment"):
            throughput(relay_conn, conn, presence, 200)  # warm-up, not counted
            rates = [throughput(relay_conn, conn, presence, backlog) for _ in range(runs)]
            print(f"  2 relays, 1 assignment consumer: {rates}", file=sys.stderr)
            out["by_relays"] = {"1": out["by_consumers"]["1"], "2": spread(rates)}
    out["relay_drain_events_per_s"] = relay_drain(quick)
    out["backlog"] = backlog
    return out
