"""`make soak`: 10 minutes at 500 events/s with operators deciding, memory sampled.

Every process of the system runs as `make up` runs it: relay, assignment, inbound, ack, the
API, and beside them the Prefect server, the flow runner (deployments.serve) and the
console. Events are inserted at a steady rate; operator threads read their work through
GET /users/{id}/assignments and decide it through PUT /assignments/{id}. Every
SAMPLE_SECONDS the resident memory of each process is recorded: VmRSS for the consumers and
the API; for the Prefect server (its keeper and the server it forked), the flow runner (with
its flow-run subprocesses) and the console, the proportional set size of the whole tree, so
that pages a fork shares are counted once. The consumers and the API must stay
under 150 MB and flat; the others are reported beside them. Writes the `soak` section of
`.bench/results.json`. `--seconds` shortens it for a try-out.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench import report
from bench.pipeline import offered
from bench.stack import add_operators, api, consumers, fresh, rss_mb, token_for
from common import resources
from common.adapters.presence import Presence
from tests import servers
from tests.processes import ROOT, eventually, free_port, stop

SAMPLE_SECONDS = 10
LIMIT_MB = 150
# Growth from the first full minute to the last that still counts as flat.
FLAT_MB = 15
OPERATORS_PER_REGION = 10
DECIDERS = 4
REASONS = ["false_alarm", "duplicate", "handled_on_site", "other"]


def pss_mb(pid: int) -> float | None:
    """Proportional set size of a process (Pss in smaps_rollup), in MB: each shared page
    divided among the processes sharing it. VmRSS where the kernel has no smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        return rss_mb(pid)
    except OSError:
        return None
    return rss_mb(pid)


def tree_pss(pid: int) -> float | None:
    """PSS of a process and all its descendants, in MB (the Prefect server's keeper and its
    server, the flow runner with its flow-run subprocesses, streamlit)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
    total, todo, seen = 0.0, [pid], False
    while todo:
        current = todo.pop()
        size = pss_mb(current)
        if size is not None:
            total, seen = total + size, True
        todo.extend(children.get(current, []))
    return round(total, 1) if seen else None


@contextlib.contextmanager
def beside(settings):
    """The Prefect server, the flow runner and the console, as `make up` starts them;
    yields {name: Popen} of those that started (a failure to start is reported, not fatal)."""
    home = tempfile.mkdtemp(prefix="bench-prefect-")
    port, console_port = free_port(), free_port()
    env = servers.settings_env(settings)
    env.update(PYTHONPATH=str(ROOT), PREFECT_HOME=home, DO_NOT_TRACK="1",
               PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_RUNNER_POLL_FREQUENCY="2",
               PATH=f"{ROOT}/.venv/bin:{env.get('PATH', '')}")
    bin_ = f"{ROOT}/.venv/bin"
    started: dict[str, subprocess.Popen] = {}
    quiet = {"cwd": ROOT, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    try:
        started["prefect_server"] = subprocess.Popen(
            [sys.executable, "-m", "deployments.prefect_server", "--host", "127.0.0.1",
             "--port", str(port)], **quiet)
        try:
            eventually(lambda: _up(f"http://127.0.0.1:{port}/api/health"), timeout=120,
                       interval=1, message="the Prefect server answers")
            started["flow_runner"] = subprocess.Popen(
                [sys.executable, "-m", "deployments.serve", "--default",
                 "EXPIRED_EVENT_CRON=* * * * *", "--default", "INACTIVE_USER_CRON=* * * * *"],
                **quiet)
        except AssertionError as error:
            print(f"soak: the Prefect server did not start ({error}); flow runner skipped",
                  file=sys.stderr)
        started["console"] = subprocess.Popen(
            [f"{bin_}/streamlit", "run", "console/app.py", "--server.port", str(console_port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"], **quiet)
        yield started
    finally:
        for name in ("console", "flow_runner", "prefect_server"):
            if name in started:
                stop(started[name], timeout=10)


def _up(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=5).status_code == 200
    return False


def decide_loop(url: str, operators: list[int], stopping: threading.Event, counts: dict):
    """One operator desk: read each operator's work and decide it, until told to stop."""
    rng = random.Random()
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stopping.is_set():
            for user_id in operators:
                headers = {"Authorization": f"Bearer {token_for(user_id)}"}
                with contextlib.suppress(httpx.HTTPError):
                    work = client.get(f"/users/{user_id}/assignments", headers=headers).json()
                    for item in work[:10]:
                        body = ({"status": "approved"} if rng.random() < 0.5 else
                                {"status": "rejected", "reason": rng.choice(REASONS)})
                        answer = client.put(f"/assignments/{item['assignment_id']}",
                                            json=body, headers=headers)
                        counts["decided" if answer.status_code == 200 else "refused"] += 1
                if stopping.is_set():
                    return


def soak(seconds: float, rate: int) -> dict:
    series: dict[str, list] = {}
    counts = {"decided": 0, "refused": 0}
    with fresh("soak") as settings, \
            resources.relay_connection(settings, autocommit=True) as relay_conn, \
            resources.assignment_connection(settings, autocommit=True) as conn:
        presence = Presence(resources.redis_client(settings), settings)
        operators = list(add_operators(conn, presence, OPERATORS_PER_REGION))
        with consumers(settings, "relay") as relay, consumers(settings, "assignment") as asg, \
                consumers(settings, "inbound") as inbound, consumers(settings, "ack") as ack, \
                api(settings) as (url, api_proc), beside(settings) as others:
            own = {"relay": relay[0], "assignment": asg[0], "inbound": inbound[0],
                   "ack": ack[0], "api": api_proc}
            stopping = threading.Event()
            threads = [threading.Thread(target=decide_loop, daemon=True,
                                        args=(url, operators[i::DECIDERS], stopping, counts))
                       for i in range(DECIDERS)]
            sampler = threading.Thread(target=_sample, daemon=True,
                                       args=(own, others, series, stopping))
            for thread in [*threads, sampler]:
                thread.start()
            inserted = offered(relay_conn, rate, seconds)
            stopping.set()
            for thread in [*threads, sampler]:
                thread.join(60)
        waiting = conn.execute("SELECT count(*) AS n FROM events WHERE waiting_since IS NOT "
                               "NULL").fetchone()["n"]
    return _summary(series, own_names=("relay", "assignment", "inbound", "ack", "api"),
                    seconds=seconds, rate=rate, inserted=inserted,
                    inserted_per_s=round(inserted / seconds), waiting=waiting,
                    decided_per_s=round(counts["decided"] / seconds, 1), **counts)


def _sample(own: dict, others: dict, series: dict, stopping: threading.Event) -> None:
    start = time.monotonic()
    while True:
        at = round(time.monotonic() - start)
        for name, proc in own.items():
            series.setdefault(name, []).append([at, rss_mb(proc.pid)])
        for name, proc in others.items():
            series.setdefault(name, []).append([at, tree_pss(proc.pid)])
        if stopping.wait(SAMPLE_SECONDS):
            return


def _summary(series: dict, own_names, **facts) -> dict:
    """Per process: first, last and largest sample, growth after the first minute and, for
    the consumers and the API, the verdicts; beside them the sum at the end (the figure the
    issue compares with the original's 285 MB) and what the processes ran with."""
    processes = {}
    for name, points in series.items():
        values = [v for _, v in points if v is not None]
        if not values:
            continue
        after_warmup = [v for t, v in points if v is not None and t >= 60] or values
        first, last = after_warmup[0], values[-1]
        entry = {"start": values[0], "end": last, "max": max(values),
                 "growth_after_first_minute": round(last - first, 1), "series": points}
        if name in own_names:
            entry["under_limit"] = max(values) < LIMIT_MB
            entry["flat"] = last - first <= FLAT_MB
        processes[name] = entry
    total = round(sum(p["end"] for p in processes.values()), 1)
    return {**facts, "limit_mb": LIMIT_MB, "flat_mb": FLAT_MB, "processes": processes,
            "total_end_mb": total, "environment": environment()}


def environment() -> dict:
    """What changes the figures without changing the code: glibc's arenas, and whether the
    dependencies' bytecode was compiled (without it, every process compiles each module it
    imports at start, and keeps the compiler's garbage in its heap)."""
    import redis  # any dependency: is its bytecode on disk?

    cached = Path(importlib.util.cache_from_source(redis.__file__)).exists()
    return {"MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX"),
            "PYTHONOPTIMIZE": os.environ.get("PYTHONOPTIMIZE"),
            "dependencies_bytecode_compiled": cached}


def table(section: dict) -> str:
    lines = [f"soak: {section['seconds']:.0f} s at {section['rate']} events/s, "
             f"{section['inserted']} inserted ({section['inserted_per_s']}/s achieved), "
             f"{section['decided']} decided through HTTP ({section['decided_per_s']}/s), "
             f"{section['waiting']} waiting at the end", "",
             "| process | start MB | end MB | max MB | growth after 1st min | verdict |",
             "|---|---:|---:|---:|---:|---|"]
    for name, p in section["processes"].items():
        verdict = "reported" if "flat" not in p else (
            ("flat" if p["flat"] else "GREW") + (", < 150 MB" if p["under_limit"] else
                                                  ", OVER 150 MB"))
        lines.append(f"| {name} | {p['start']:.0f} | {p['end']:.0f} | {p['max']:.0f} | "
                     f"{p['growth_after_first_minute']:+.0f} | {verdict} |")
    lines.append(f"| all {len(section['processes'])} processes | | "
                 f"{section['total_end_mb']:.0f} | | | |")
    lines += ["", f"environment: {section['environment']}"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=int, default=500)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0:
        print("soak: --seconds and --rate must be positive", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    section = soak(args.seconds, args.rate)
    report.save({"soak": section})
    print(table(section))
    own = [p for p in section["processes"].values() if "flat" in p]
    return 0 if all(p["flat"] and p["under_limit"] for p in own) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
