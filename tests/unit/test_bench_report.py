"""The benchmark's table reads the throughput against the same run's CPU bound."""

from bench import report

COSTS = {"relay": 20.0, "assignment": 45.0, "postgres_ours": 80.0, "rabbitmq": 40.0,
         "redis": 15.0, "machine": 230.0}


def test_the_cpu_bound_is_two_cores_over_our_processes_and_servers_cpu_per_event():
    # 200 ms per 1,000 events of ours (the machine's total, others' work included, is not)
    assert report.cpu_bound(COSTS) == 10_000.0
    assert report.cpu_bound({}) is None


def test_the_throughput_row_reads_as_a_share_of_the_same_runs_cpu_bound():
    results = {"throughput_events_per_s": 8_500.0, "cpu_ms_per_1000_events": COSTS,
               "cpu_bound_events_per_s": report.cpu_bound(COSTS),
               "relay_drain_events_per_s": 15_000.0,
               "ceilings": {"queue_publishes_per_s": {"median": 20_000.0, "min": 1, "max": 2}}}
    rows = report.table(results, {}).splitlines()
    throughput = next(r for r in rows if r.startswith("| insert → assigned, backlog"))
    drain = next(r for r in rows if r.startswith("| relay drain"))
    assert "0.85 of cpu_bound_events_per_s" in throughput
    assert "0.75 of queue_publishes_per_s" in drain
    assert any(r.startswith("| cpu_bound_events_per_s") and "10,000 events/s" in r for r in rows)


FLOORS = {"notify_ms": {"median": 2.0, "min": 1.8, "max": 2.5},
          "queue_hop_ms": {"median": 3.0, "min": 2.9, "max": 3.4},
          "commit_ms": {"median": 0.5, "min": 0.4, "max": 0.6},
          "queue_hop_one_ms": {"median": 1.5, "min": 1.4, "max": 1.7}}


def test_each_path_floor_is_the_sum_of_its_bare_hops():
    assert report.path_floor(FLOORS, "latency_floor_ms") == 5.0
    assert report.path_floor(FLOORS, "viewed_floor_ms") == 2.0
    assert report.path_floor({"notify_ms": FLOORS["notify_ms"]}, "latency_floor_ms") is None


def test_the_latency_rows_read_against_the_same_runs_floors():
    results = {"latency_ms": {"p50": 9.0, "p95": 12.0, "p99": 20.0},
               "decision_to_viewed_ms_p50": 5.0, "latency_floors_ms": FLOORS,
               **{path: report.path_floor(FLOORS, path) for path in report.PATHS},
               "backlog_machine_busy_share": 0.93}
    rows = report.table(results, {}).splitlines()
    p50 = next(r for r in rows if r.startswith("| insert → assigned p50 at 500/s"))
    assert "1.80 of latency_floor_ms" in p50
    viewed = next(r for r in rows if r.startswith("| decision → source Viewed p50"))
    assert "2.50 of viewed_floor_ms" in viewed
    assert any(r.startswith("| floor: a one-row transaction committed p50") and "| 0.50 ms" in r
               for r in rows)
    busy = next(r for r in rows if r.startswith("| … the machine's cores busy"))
    assert "| 0.93 " in busy
