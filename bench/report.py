"""What a benchmark run leaves: a Markdown table on the terminal, `.bench/results.json`
(sections merged, so `make soak` and `make bench-cluster` keep theirs), and PNG charts.

Called by bench.__main__ and bench.soak.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / ".bench"
RESULTS = OUT / "results.json"

# key in results.json -> (label, unit, target, the ceiling it is read against)
ROWS = [
    ("throughput_events_per_s", "insert → assigned, backlog, 1 consumer", "events/s",
     "≥ 10,000", "cpu_bound_events_per_s"),
    ("backlog_head_ms", "… of which the head: insert → first assignment begins", "ms", "",
     None),
    ("backlog_after_head_events_per_s", "… and the rate after the head", "events/s", "",
     "cpu_bound_events_per_s"),
    ("backlog_machine_busy_share", "… the machine's cores busy in the window (anyone's work)",
     "", "", None),
    ("latency_ms.p50", "insert → assigned p50 at 500/s", "ms", "≤ 10", "latency_floor_ms"),
    ("latency_ms.p95", "insert → assigned p95 at 500/s", "ms", "", None),
    ("latency_ms.p99", "insert → assigned p99 at 500/s", "ms", "≤ 50", None),
    ("decision_to_viewed_ms_p50", "decision → source Viewed p50 (HTTP)", "ms", "≤ 10",
     "viewed_floor_ms"),
    ("backfill_ms_p50", "decision → backfilled p50 (HTTP)", "ms", "≤ 100", None),
    ("login_to_work_ms_p50", "login → first work p50 (HTTP)", "ms", "≤ 100", None),
    ("relay_drain_events_per_s", "relay drain, 2 workers", "events/s", "≥ 10,000",
     "queue_publishes_per_s"),
]


def load() -> dict:
    try:
        return json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}


def save(sections: dict) -> dict:
    """Merge these top-level sections into results.json; other sections stay."""
    OUT.mkdir(exist_ok=True)
    merged = load()
    merged.update(sections)
    RESULTS.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    return merged


def _get(results: dict, dotted: str):
    value = results
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _num(x) -> str:
    if x is None:
        return "-"
    if 0 < abs(x) < 1:
        return f"{x:.2f}"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}"


def table(results: dict, spreads: dict) -> str:
    """The Markdown table: figure, median, min–max over the runs, target, ÷ ceiling."""
    ceilings = results.get("ceilings", {})
    lines = ["| figure | median | min–max | target | ÷ ceiling |", "|---|---:|---:|---|---:|"]
    for key, label, unit, target, ceiling in ROWS:
        value = _get(results, key)
        low, high = spreads.get(key, (None, None))
        ratio = "-"
        if ceiling in results and value and results[ceiling]:  # the same run's CPU bound
            ratio = f"{value / results[ceiling]:.2f} of {ceiling}"
        elif ceiling and value and ceilings.get(ceiling, {}).get("median"):
            ratio = f"{value / ceilings[ceiling]['median']:.2f} of {ceiling}"
        lines.append(f"| {label} | {_num(value)} {unit} | {_num(low)}–{_num(high)} | "
                     f"{target} | {ratio} |")
    for count, figure in sorted(results.get("by_consumers", {}).items(), key=lambda i: int(i[0])):
        lines.append(f"| throughput, {count} assignment consumer(s) | "
                     f"{_num(figure['median'])} events/s | {_num(figure['min'])}–"
                     f"{_num(figure['max'])} | | |")
    for count, figure in sorted(results.get("by_relays", {}).items(), key=lambda i: int(i[0])):
        lines.append(f"| throughput, {count} relay(s), 1 assignment consumer | "
                     f"{_num(figure['median'])} events/s | {_num(figure['min'])}–"
                     f"{_num(figure['max'])} | | |")
    for rate, figure in sorted(results.get("latency_by_load", {}).items(),
                               key=lambda i: int(i[0])):
        lines.append(f"| insert → assigned at {rate}/s p50 / p95 / p99 | "
                     f"{_num(figure['p50'])} / {_num(figure['p95'])} / {_num(figure['p99'])} ms"
                     " | | | |")
    for name, figure in ceilings.items():
        lines.append(f"| ceiling: {name} | {_num(figure['median'])} /s | "
                     f"{_num(figure['min'])}–{_num(figure['max'])} | | 1.00 |")
    lines.extend(_floor_rows(results))
    lines.extend(_cpu_rows(results.get("cpu_ms_per_1000_events", {})))
    for name, mb in sorted(results.get("rss_mb", {}).items()):
        lines.append(f"| RSS of {name} at the end | {mb:.0f} MB | | < 150 MB | |")
    if results.get("queries"):  # make bench-queries (bench/queries.py)
        q = results["queries"]
        lines.append(f"| slowest per-event/poll query at 1M rows ({q['slowest_hot']}) | "
                     f"{q['slowest_hot_ms']:.2f} ms | | ≤ 5 ms, indexed | "
                     f"{len(q['failing'])} failing |")
    return "\n".join(lines)


FLOORS = {"notify_ms": "a 500/s step (25 events) made, inserted → NOTIFY heard",
          "queue_hop_ms": "a step's 25 confirmed publishes → the 13th delivered, quorum queue",
          "commit_ms": "a one-row transaction committed",
          "queue_hop_one_ms": "one confirmed publish → delivered, quorum queue"}
# Each floor that a goal's row is read against: the bare hops that its path cannot skip.
PATHS = {"latency_floor_ms": ("notify_ms", "queue_hop_ms"),
         "viewed_floor_ms": ("commit_ms", "queue_hop_one_ms")}
PATH_LABELS = {"latency_floor_ms": "a floor for insert → assigned p50 at 500/s",
               "viewed_floor_ms": "a floor for decision → Viewed p50"}


def path_floor(floors: dict, path: str) -> float | None:
    """The sum of the medians of a path's bare hops, measured in the same run
    (bench/ceilings.py): what the servers alone take on that path, nothing of ours in it."""
    hops = [(floors.get(name) or {}).get("median") for name in PATHS[path]]
    return None if None in hops else round(sum(hops), 2)


def _floor_rows(results: dict) -> list[str]:
    floors = results.get("latency_floors_ms", {})
    rows = [f"| floor: {label} p50 | {_num(floors[name]['median'])} ms | "
            f"{_num(floors[name]['min'])}–{_num(floors[name]['max'])} | | |"
            for name, label in FLOORS.items() if name in floors]
    for path, hops in PATHS.items():
        if results.get(path):
            rows.append(f"| {path}: {' + '.join(hops)}, {PATH_LABELS[path]} | "
                        f"{_num(results[path])} ms | | | 1.00 |")
    return rows


OURS = ("relay", "assignment", "postgres_ours", "rabbitmq", "redis")


def cpu_bound(costs: dict, cores: int = 2) -> float | None:
    """Events/s the machine's cores would carry if only our processes and the servers'
    work for them ran, every stage overlapping perfectly: cores ÷ the CPU per event they
    spent in the backlog runs (bench/cpu.py). The ceiling the throughput is read against."""
    own = sum(costs.get(name) or 0 for name in OURS)
    return round(cores * 1e6 / own, 1) if own > 0 else None


def _cpu_rows(costs: dict) -> list[str]:
    """CPU per 1,000 events of the backlog runs (1 consumer), and the rate 2 cores would
    allow if only our processes and the servers' share of ours ran."""
    if not costs:
        return []
    rows = [f"| CPU per 1,000 events: {name} | {_num(ms)} ms | | | |"
            for name, ms in costs.items()]
    bound = cpu_bound(costs)
    if bound:
        rows.append(f"| cpu_bound_events_per_s: 2 cores ÷ CPU per event (relay + assignment "
                    f"+ our PostgreSQL backends + RabbitMQ + Redis) | {_num(bound)} events/s "
                    f"| | | 1.00 |")
    return rows


def charts(results: dict) -> list[Path]:
    """latency.png (percentiles against offered load) and consumers.png (throughput
    against the number of assignment consumers, with the queue's publish ceiling)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(exist_ok=True)
    made = []
    by_load = results.get("latency_by_load", {})
    if by_load:
        loads = sorted(by_load, key=int)
        fig, ax = plt.subplots(figsize=(6, 4))
        for p in ("p50", "p95", "p99"):
            ax.plot([int(x) for x in loads], [by_load[x][p] for x in loads], marker="o", label=p)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (events/s)")
        ax.set_ylabel("insert → assigned (ms)")
        ax.set_title("Latency against offered load (1 assignment consumer)")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        made.append(_save(fig, plt, "latency.png"))
    by_consumers = results.get("by_consumers", {})
    if by_consumers:
        counts = sorted(by_consumers, key=int)
        fig, ax = plt.subplots(figsize=(6, 4))
        medians = [by_consumers[c]["median"] for c in counts]
        errors = [[m - by_consumers[c]["min"] for c, m in zip(counts, medians, strict=True)],
                  [by_consumers[c]["max"] - m for c, m in zip(counts, medians, strict=True)]]
        ax.bar(counts, medians, yerr=errors, capsize=4, label="insert → assigned")
        ceiling = results.get("ceilings", {}).get("queue_publishes_per_s", {}).get("median")
        if ceiling:
            ax.axhline(ceiling, color="grey", linestyle="--", label="bare queue publishes/s")
        ax.set_xlabel("assignment consumers")
        ax.set_ylabel("events/s (median, min–max)")
        ax.set_title("Throughput against assignment consumers")
        ax.legend()
        made.append(_save(fig, plt, "consumers.png"))
    return made


def _save(fig, plt, name: str) -> Path:
    path = OUT / name
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
