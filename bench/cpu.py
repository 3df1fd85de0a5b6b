"""CPU time per event, per server, read from /proc around a measured run.

On a shared 2-core machine a rate says little on its own, and a ceiling measured alone says
nothing of what the servers cost together. What each process spends per event does: summed,
it is what one event costs the machine, and 2 cores divided by it is the most this machine
could carry if nothing else ran. Processes: the relay and the assignment consumer (ours),
the PostgreSQL backends of the relay and the consumers (the caller leaves out the
benchmark's own connections; PostgreSQL's WAL writer and checkpointer are shared and not
counted), and the RabbitMQ and Redis servers as a whole (every `beam.smp`, every
`redis-server`): shared with whoever else uses them meanwhile, so read those as upper
bounds. `machine` is everything the machine did meanwhile, ours or not.
Called by bench.pipeline.
"""

from __future__ import annotations

import os

TICK = os.sysconf("SC_CLK_TCK")
SERVERS = {"rabbitmq": "beam.smp", "redis": "redis-server"}


def _seconds(pid: int | str) -> float:
    """utime + stime of one process, in seconds (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _command(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return ""


def _machine_busy() -> float:
    """CPU seconds the whole machine spent not idle, since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


def backends(conn, databases: list[str]) -> list[int]:
    """PIDs of the PostgreSQL backends connected to these databases (not this one)."""
    return [row["pid"] for row in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
        [databases])]


def snapshot(ours: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each named group of PIDs, of each server, of the machine."""
    out = {name: sum(_seconds(pid) for pid in pids) for name, pids in ours.items()}
    for name in SERVERS:
        out[name] = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        command = _command(pid)
        for name, prefix in SERVERS.items():
            if command.startswith(prefix):
                out[name] += _seconds(pid)
    out["machine"] = _machine_busy()
    return out


def busy_share(before: dict[str, float], after: dict[str, float], seconds: float) -> float:
    """The share of the machine's cores busy between two snapshots `seconds` apart, with
    anyone's work: near 1.0, the cores were the limit whatever the CPU bound says."""
    return round((after["machine"] - before["machine"]) / (seconds * (os.cpu_count() or 1)), 3)


def per_thousand(before: dict[str, float], after: dict[str, float], events: int) -> dict:
    """CPU milliseconds per 1,000 events of each group between two snapshots."""
    return {name: round((after[name] - before[name]) * 1e6 / events, 1) for name in after}
