"""`make bench-cluster` (`python -m bench.cluster [--quick] [--keep]`): the pipeline through a
three-node RabbitMQ cluster, one node stopped mid-run, and proof that nothing was lost.

1. Start rb1-rb3@localhost and join them, and the standalone rb0 beside them
   (bench.rabbit_cluster; about 1-2 minutes here).
2. Run the failover tests on them (`pytest -m cluster tests/integration/test_broker_failover.py`).
3. The insert -> assigned pipeline of bench.pipeline (the real relay and assignment consumer
   processes, 400 operators) with RABBITMQ_URL listing the three nodes, and the same on a
   standalone extra node (rb0, started alike; the machine's own node carries every other
   session's traffic, which swung its figures by half between two runs) in the same run, so
   the two read as a ratio: the bare quorum queue's
   confirmed publishes/s and consumes/s (bench.ceilings), throughput of a backlog and latency
   at 500 events/s, median of 3 runs each.
4. Failover: events offered at 500/s while rb1, the node every client is connected to and
   where the queues' leaders are, is stopped a third of the way in. Latency through the stop
   (p50, p99, max) says how long the failover held events back.
5. Verify: the quorum queues have all three nodes as members; every event of relay_service is
   stored once and has exactly one assignment; nothing is left on the queues or their DLQs.
6. Stop the nodes (unless --keep) and merge the `cluster` section into .bench/results.json.

Exits 1 with one line if the cluster cannot start, a test fails, or the verification finds a
lost or doubled event; the figures are written either way, with what failed.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from bench import ceilings, pipeline, rabbit_cluster, report
from bench.stack import add_operators, consumers, fresh, spread
from common import resources
from common.adapters import broker
from common.adapters.presence import Presence
from tests.processes import ROOT, eventually

RATE = 500


def failover_tests() -> str:
    """Run the failover tests on the running cluster; 'passed' or the failure's last line."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cluster", "-q", "-p", "no:cacheprovider",
         "tests/integration/test_broker_failover.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    lines = result.stdout.strip().splitlines() or ["no output"]
    print(f"  failover tests: {lines[-1]}", file=sys.stderr)
    return "passed" if result.returncode == 0 else f"failed: {lines[-1]}"


def pipeline_figures(settings, quick: bool) -> dict:
    """The bare quorum queue's ceilings (bench.ceilings), then throughput of a backlog and
    latency at 500/s with one relay and one assignment consumer."""
    backlog, runs, seconds = (2_000, 1, 2.0) if quick else (15_000, 3, 5.0)
    bare = [ceilings.queue_rates(settings, 5_000 if quick else 20_000) for _ in range(runs)]
    with resources.relay_connection(settings, autocommit=True) as relay_conn, \
            resources.assignment_connection(settings, autocommit=True) as conn:
        presence = Presence(resources.redis_client(settings), settings)
        add_operators(conn, presence, pipeline.OPERATORS_PER_REGION)
        with consumers(settings, "relay"), consumers(settings, "assignment"):
            pipeline.throughput(relay_conn, conn, presence, 200)  # warm-up, not counted
            rates = [pipeline.throughput(relay_conn, conn, presence, backlog)
                     for _ in range(runs)]
            latencies = [pipeline.latency_run(relay_conn, conn, presence, RATE, seconds)
                         for _ in range(runs)]
    return {"queue_publishes_per_s": spread([b[0] for b in bare]),
            "queue_consumes_per_s": spread([b[1] for b in bare]),
            "throughput_events_per_s": spread(rates), "backlog": backlog,
            "latency_ms_at_500": {p: spread([f[p] for f in latencies])
                                  for p in ("p50", "p95", "p99")}}


def failover_run(settings, quick: bool) -> dict:
    """Offer events at 500/s; stop rb1 a third of the way in; latency through the stop."""
    seconds = 9.0 if quick else 30.0
    node = rabbit_cluster.NODES[0]
    before = rabbit_cluster.queue_members(rabbit_cluster.NODES[1], settings.NAMESPACE)
    stop_times: dict[str, float] = {}

    def stop_first_node() -> None:
        stop_times["asked"] = time.monotonic() - started
        rabbit_cluster.stop_node(node)
        stop_times["stopped"] = time.monotonic() - started

    with resources.relay_connection(settings, autocommit=True) as relay_conn, \
            resources.assignment_connection(settings, autocommit=True) as conn:
        presence = Presence(resources.redis_client(settings), settings)
        pipeline.free_everyone(relay_conn, conn, presence)
        since = conn.execute("SELECT clock_timestamp() AS t").fetchone()["t"]
        with consumers(settings, "relay"), consumers(settings, "assignment"):
            started = time.monotonic()
            stopper = threading.Timer(seconds / 3, stop_first_node)
            stopper.start()
            target = pipeline.assigned(conn) + pipeline.offered(relay_conn, RATE, seconds)
            stopper.join()
            eventually(lambda: pipeline.assigned(conn) >= target, timeout=600, interval=0.05,
                       message="every event offered through the stop assigned")
            drained = time.monotonic() - started
        latency = conn.execute(
            "SELECT count(*) AS events, percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50,"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99, max(d) AS max FROM ("
            " SELECT extract(epoch FROM a.created_at - e.created_at) * 1000 AS d"
            " FROM assignments a JOIN events e USING (event_id) WHERE e.created_at >= %s) t",
            [since]).fetchone()
    after = rabbit_cluster.queue_members(rabbit_cluster.NODES[1], settings.NAMESPACE)
    return {"offered_per_s": RATE, "seconds": seconds, "stopped": node.nodename,
            "stop_asked_at_s": round(stop_times.get("asked", -1), 1),
            "stopped_at_s": round(stop_times.get("stopped", -1), 1),
            "all_assigned_at_s": round(drained, 1),
            "events": latency["events"],
            "latency_ms": {k: round(float(latency[k]), 1) for k in ("p50", "p99", "max")},
            "leaders_before": sorted({q["leader"] for q in before.values()}),
            "leaders_after": sorted({q["leader"] for q in after.values()})}


def verify(settings) -> dict:
    """Nothing lost, nothing doubled: relay_service's events against assignment_service, and
    the queues (on a running node) empty."""
    with resources.relay_connection(settings) as relay_conn:
        rows = relay_conn.execute("SELECT event_id, dispatch_count FROM events").fetchall()
    source = {row["event_id"] for row in rows}
    with resources.assignment_connection(settings) as conn:
        stored = {r["event_id"] for r in conn.execute("SELECT event_id FROM dedup_events")}
        per_event = Counter(r["event_id"] for r in conn.execute("SELECT event_id FROM assignments"))
    left = {}
    connection = broker.connect(settings, "bench-cluster-verify")
    try:
        channel = connection.channel()
        for base in broker.QUEUES:
            for queue in (settings.name(base), broker.dlq_name(settings.name(base))):
                left[queue] = channel.queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()
    return {
        "events": len(source),
        "stored": len(stored),
        "lost": len(source - set(per_event)),
        "assigned_once": sum(1 for n in per_event.values() if n == 1),
        "assigned_more_than_once": sum(1 for n in per_event.values() if n > 1),
        "unknown_to_the_source": len(set(per_event) - source),
        # Confirmed dispatches beyond the first (relay-poll's re-dispatch). A batch cut off
        # by the stop is claimed again and published again without counting here; the
        # consumers' dedup absorbs both kinds, which `assigned_more_than_once` checks.
        "dispatched_again_by_relay": sum(max(row["dispatch_count"] - 1, 0) for row in rows),
        "messages_left": sum(left.values()),
    }


def problems(section: dict) -> list[str]:
    """What makes this run a failure, one phrase each (empty: none)."""
    found = []
    if section["failover_tests"] != "passed":
        found.append(f"failover tests {section['failover_tests']}")
    members = sorted(n.nodename for n in rabbit_cluster.NODES)
    thin = [q for q, m in section["queues"].items() if m["members"] != members]
    if thin or not section["queues"]:
        found.append(f"queues not on all three nodes: {thin or 'none found'}")
    check = section["verified"]
    if check["lost"] or check["stored"] != check["events"]:
        found.append(f"{check['lost']} events lost ({check['stored']} of {check['events']} stored)")
    if check["assigned_more_than_once"] or check["unknown_to_the_source"]:
        found.append(f"{check['assigned_more_than_once']} events assigned more than once")
    if check["messages_left"]:
        found.append(f"{check['messages_left']} messages left on the queues")
    return found


def measure(quick: bool) -> dict:
    """Everything above on a started cluster; the `cluster` section of results.json."""
    section: dict = {"nodes": [{"node": n.nodename, "amqp_port": n.amqp_port}
                               for n in rabbit_cluster.NODES],
                     "single_node_is": rabbit_cluster.SOLO.nodename}
    section["failover_tests"] = failover_tests()
    with fresh("single", RABBITMQ_URL=rabbit_cluster.SOLO.url) as settings:
        section["single_node"] = pipeline_figures(settings, quick)
    print(f"  single node: {section['single_node']['throughput_events_per_s']}", file=sys.stderr)
    with fresh("cluster", RABBITMQ_URL=rabbit_cluster.urls()) as settings:
        section["cluster"] = pipeline_figures(settings, quick)
        print(f"  cluster: {section['cluster']['throughput_events_per_s']}", file=sys.stderr)
        section["queues"] = rabbit_cluster.queue_members(rabbit_cluster.NODES[0],
                                                         settings.NAMESPACE)
        section["failover"] = failover_run(settings, quick)
        print(f"  failover: {section['failover']}", file=sys.stderr)
        section["verified"] = verify(settings)
    return section


def table(section: dict) -> str:
    single, cluster = section["single_node"], section["cluster"]
    lines = ["| figure (median, min–max) | standalone node | 3-node cluster |", "|---|---:|---:|"]

    def cell(figure: dict) -> str:
        return f"{figure['median']:,.1f} ({figure['min']:,.1f}–{figure['max']:,.1f})"

    for key, label in (("queue_publishes_per_s", "ceiling: confirmed publishes/s, bare quorum queue"),
                       ("queue_consumes_per_s", "ceiling: consumes/s, bare quorum queue")):
        lines.append(f"| {label} | {cell(single[key])} | {cell(cluster[key])} |")
    lines.append(f"| insert → assigned, backlog of {single['backlog']:,}, events/s | "
                 f"{cell(single['throughput_events_per_s'])} | "
                 f"{cell(cluster['throughput_events_per_s'])} |")
    for p in ("p50", "p95", "p99"):
        lines.append(f"| insert → assigned {p} at {RATE}/s, ms | "
                     f"{cell(single['latency_ms_at_500'][p])} | "
                     f"{cell(cluster['latency_ms_at_500'][p])} |")
    failover, check = section["failover"], section["verified"]
    lines.append(f"\nFailover: {failover['stopped']} stopped at {failover['stopped_at_s']} s of "
                 f"{failover['seconds']:.0f} s at {RATE}/s; latency p50 "
                 f"{failover['latency_ms']['p50']} ms, p99 {failover['latency_ms']['p99']} ms, "
                 f"max {failover['latency_ms']['max']} ms; queue leaders "
                 f"{failover['leaders_before']} → {failover['leaders_after']}.")
    lines.append(f"Verified: {check['events']:,} events, {check['stored']:,} stored, "
                 f"{check['lost']} lost, {check['assigned_once']:,} assigned once, "
                 f"{check['assigned_more_than_once']} more than once, "
                 f"{check['dispatched_again_by_relay']} dispatched again by the relay, "
                 f"{check['messages_left']} messages left. Failover tests: "
                 f"{section['failover_tests']}.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(2) as pool:
            cluster = pool.submit(rabbit_cluster.start)
            solo = pool.submit(rabbit_cluster.start, (rabbit_cluster.SOLO,))
            print(f"started {', '.join(cluster.result() + solo.result())}", file=sys.stderr)
        started = round(time.monotonic() - began)
        section = measure(args.quick)
    except rabbit_cluster.ClusterError as error:
        print(f"bench-cluster: {error}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            try:
                rabbit_cluster.stop((*rabbit_cluster.NODES, rabbit_cluster.SOLO))
            except rabbit_cluster.ClusterError as error:
                print(f"bench-cluster: could not stop the cluster: {error}", file=sys.stderr)
    section["bench"] = {"quick": args.quick, "cluster_start_s": started,
                        "seconds": round(time.monotonic() - began),
                        "at": datetime.now(UTC).isoformat(timespec="seconds")}
    section["problems"] = problems(section)
    report.save({"cluster": section})
    print(table(section))
    print(f"results: {report.RESULTS} (section cluster)")
    if section["problems"]:
        print(f"bench-cluster: {'; '.join(section['problems'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
