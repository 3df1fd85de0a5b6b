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
