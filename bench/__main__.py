"""`make bench` (`python -m bench [--quick]`): every figure of the system, the machine's
ceilings beside them, a Markdown table, `.bench/results.json` and two PNG charts.

Sections, each on fresh databases and its own NAMESPACE: ceilings (bench.ceilings), the
insert -> assigned pipeline (bench.pipeline), the operator's side through HTTP
(bench.review). `--quick` (`make bench QUICK=1`) runs each once on small sizes, for use
while working; its figures are noisier and say so in results.json (`"quick": true`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime

from bench import ceilings, pipeline, report, review
from bench.stack import fresh


def run(quick: bool) -> dict:
    """Measure everything; returns the sections this run owns in results.json."""
    started = time.monotonic()
    with fresh("ceilings") as settings:
        measured_ceilings = ceilings.measure(settings, quick)
        measured_floors = ceilings.floors(settings, quick)
    print(f"ceilings measured ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    flow = pipeline.measure(quick)
    print(f"pipeline measured ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    operator = review.measure(quick)
    print(f"review measured ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    at_500 = flow["latency_by_load"]["500"]
    costs = {name: figure["median"] for name, figure in flow["cpu_ms_per_1000_events"].items()}
    return {
        "throughput_events_per_s": flow["by_consumers"]["1"]["median"],
        "latency_ms": {p: at_500[p]["median"] for p in ("p50", "p95", "p99")},
        "latency_by_load": {rate: {p: figure[p]["median"] for p in figure}
                            for rate, figure in flow["latency_by_load"].items()},
        "by_consumers": flow["by_consumers"],
        "by_relays": flow["by_relays"],
        "backfill_ms_p50": operator["backfill_ms"]["median"],
        "decision_to_viewed_ms_p50": operator["decision_to_viewed_ms"]["median"],
        "relay_drain_events_per_s": flow["relay_drain_events_per_s"]["median"],
        "login_to_work_ms_p50": operator["login_to_work_ms"]["median"],
        "rss_mb": {**flow["rss_mb"], **operator["rss_mb"]},
        "cpu_ms_per_1000_events": costs,
        "cpu_bound_events_per_s": report.cpu_bound(costs),
        "backlog_head_ms": flow["backlog_phases"]["head_ms"]["median"],
        "backlog_after_head_events_per_s":
            flow["backlog_phases"]["after_head_events_per_s"]["median"],
        "ceilings": measured_ceilings,
        "latency_floors_ms": measured_floors,
        **{path: report.path_floor(measured_floors, path) for path in report.PATHS},
        "backlog_machine_busy_share": flow["backlog_phases"]["machine_busy_share"]["median"],
        "spread": {
            "latency_by_load": flow["latency_by_load"],
            "relay_drain_events_per_s": flow["relay_drain_events_per_s"],
            "backlog_phases": flow["backlog_phases"],
            "decision_to_viewed_ms": operator["decision_to_viewed_ms"],
            "backfill_ms": operator["backfill_ms"],
            "login_to_work_ms": operator["login_to_work_ms"],
        },
        "bench": {"quick": quick, "at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "seconds": round(time.monotonic() - started), "backlog": flow["backlog"]},
    }


def spreads(results: dict) -> dict:
    """(min, max) per table row, from the runs behind each median."""
    s = results["spread"]
    out = {"throughput_events_per_s": _mm(results["by_consumers"]["1"]),
           "backlog_head_ms": _mm(s["backlog_phases"]["head_ms"]),
           "backlog_after_head_events_per_s": _mm(s["backlog_phases"]["after_head_events_per_s"]),
           "backlog_machine_busy_share": _mm(s["backlog_phases"]["machine_busy_share"]),
           "relay_drain_events_per_s": _mm(s["relay_drain_events_per_s"]),
           "decision_to_viewed_ms_p50": _mm(s["decision_to_viewed_ms"]),
           "backfill_ms_p50": _mm(s["backfill_ms"]),
           "login_to_work_ms_p50": _mm(s["login_to_work_ms"])}
    for p in ("p50", "p95", "p99"):
        out[f"latency_ms.{p}"] = _mm(s["latency_by_load"]["500"][p])
    return out


def _mm(figure: dict) -> tuple:
    return figure["min"], figure["max"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    results = run(args.quick)
    merged = report.save(results)
    print(report.table(merged, spreads(results)))
    for path in report.charts(merged):
        print(f"chart: {path}")
    print(f"results: {report.RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
