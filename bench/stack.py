"""What every benchmark section stands on: fresh databases and NAMESPACE, synthetic operators
with live sessions, the real processes (consumers and the HTTP API), and their memory.

Called by bench.ceilings, bench.pipeline, bench.review and bench.soak; nothing runs at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import subprocess
import sys
import uuid

import httpx

from common.adapters import broker
from common.adapters.migrations import migrate
from common.adapters.presence import Presence
from common.domain.routing import USER_REGIONS
from common.settings import Settings
from tests import servers
from tests.processes import ROOT, eventually, free_port, running, stop
from tests.servers import tear_down

FIRST_OPERATOR = 10_000


@contextlib.contextmanager
def fresh(name: str, **overrides):
    """Fresh databases and NAMESPACE for one section; dropped when it ends."""
    run = f"{name}_{uuid.uuid4().hex[:6]}"
    settings = Settings(
        POSTGRES_DB_RELAY=f"bench_relay_{run}",
        POSTGRES_DB_ASSIGNMENT=f"bench_assignment_{run}",
        NAMESPACE=f"bench_{run}",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        **overrides,
    )
    migrate(settings)
    try:
        yield settings
    finally:
        tear_down(settings)


def token_for(user_id: int) -> str:
    return f"bench-token-{user_id}"


def add_operators(conn, presence: Presence, per_region: int,
                  regions=USER_REGIONS, first_id: int = FIRST_OPERATOR) -> dict[int, str]:
    """Synthetic operators, available, each with a live session row (far-future expiry, a
    known token) and Redis presence: what a login leaves behind. Returns id -> region."""
    made: dict[int, str] = {}
    user_id = first_id
    with conn.transaction(), conn.cursor() as cur:
        for region in regions:
            ids = list(range(user_id, user_id + per_region))
            user_id += per_region
            cur.execute(
                "INSERT INTO users (id, username, name, role, region, password_hash, available) "
                "SELECT id, 'bench' || id, 'Bench ' || id, 'operator', %s, 'x', true "
                "FROM unnest(%s::int[]) id", [region, ids])
            cur.execute("INSERT INTO operator_load (user_id) SELECT unnest(%s::int[])", [ids])
            cur.execute(
                "INSERT INTO sessions (token_hash, user_id, expires_at) "
                "SELECT h, u, now() + interval '10 years' FROM unnest(%s::bytea[], %s::int[]) "
                "AS t(h, u)", [[_hash(token_for(i)) for i in ids], ids])
            made.update(dict.fromkeys(ids, region))
    for uid, region in made.items():
        presence.touch_session(uid, ttl=24 * 3600)
        presence.set_available(uid, region)
    return made


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@contextlib.contextmanager
def consumers(settings: Settings, name: str, copies: int = 1):
    """`python -m consumers NAME` (copies of it); yields the Popen objects once each queue
    consumer is registered with the broker (the relay: once started)."""
    level = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    with running(settings, name, copies=copies, logs=sys.stderr, LOG_LEVEL=level,
                 METRICS_PORT=0) as procs:
        queue = {"assignment": broker.OUTBOUND, "inbound": broker.INBOUND,
                 "ack": broker.ACK}.get(name)
        if queue is not None:
            eventually(lambda: consumer_count(settings, queue) >= copies, timeout=300,
                       interval=0.2, message=f"{copies} {name} consumer(s) registered")
        yield procs


def consumer_count(settings: Settings, base: str) -> int:
    connection = broker.connect(settings, "bench-probe")
    try:
        channel = connection.channel()
        broker.declare_queues(channel, settings, [base])
        return channel.queue_declare(settings.name(base), passive=True).method.consumer_count
    finally:
        connection.close()


@contextlib.contextmanager
def api(settings: Settings):
    """The HTTP API under uvicorn, as `make up` runs it, on a free port: yields (url, proc)."""
    port = free_port()
    environment = servers.settings_env(settings)
    environment["PYTHONPATH"] = str(ROOT)
    environment["METRICS_PORT"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "common.api.app:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _answers(url), timeout=60, message="the API answers /health")
        yield url, proc
    finally:
        stop(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code < 500
    except httpx.HTTPError:
        return False


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process (VmRSS), in MB; None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def rss_of(named: dict[str, list]) -> dict[str, float]:
    """{process name: MB}, the largest copy where several run."""
    out = {}
    for name, procs in named.items():
        sizes = [s for s in (rss_mb(p.pid) for p in procs) if s is not None]
        if sizes:
            out[name] = max(sizes)
    return out


def spread(values) -> dict:
    """Median with min and max of repeated runs, as results.json stores every figure."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "runs": [round(v, 2) for v in values]}
