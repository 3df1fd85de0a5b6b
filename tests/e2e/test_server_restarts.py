"""Invariant 3 across real server restarts: RabbitMQ and PostgreSQL go down and come back
while the relay and the assignment consumer are working. Every event is still stored once,
none is marked dispatched without reaching the queue, and nobody passes the cap.

The restarts use the servers' own tools on this machine (`rabbitmqctl stop_app/start_app`,
`pg_ctlcluster ... restart`); every other test of the run waits for them to finish.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from common import resources
from common.adapters.presence import Presence
from common.services.generator import generate_events
from tests import factories
from tests.processes import eventually, running

pytestmark = pytest.mark.slow

EVENTS = 3000


def rabbitmq_restart() -> None:
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
    subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, timeout=120)


def postgres_restart() -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, timeout=120)


def restartable(tool: str) -> None:
    """Skips only where the servers run without their control tools (testcontainers, say);
    `.ci/run` sets REQUIRE_SERVER_TOOLS, so in CI a missing tool fails the run instead."""
    if shutil.which(tool) is None:
        if os.environ.get("REQUIRE_SERVER_TOOLS"):
            pytest.fail(f"{tool} is not on this machine and REQUIRE_SERVER_TOOLS is set")
        pytest.skip(f"{tool} is not on this machine, so the test cannot restart the server")


def counts(settings) -> tuple[int, int, int]:
    """(stored in assignment_service, dispatched in relay_service, live assignments)."""
    def read():
        with resources.assignment_connection(settings) as a, \
                resources.relay_connection(settings) as r:
            stored = a.execute("SELECT count(*) AS n FROM dedup_events").fetchone()["n"]
            live = a.execute("SELECT count(*) AS n FROM assignments "
                             "WHERE status = 'pending' AND NOT deleted").fetchone()["n"]
            dispatched = r.execute("SELECT count(*) AS n FROM events "
                                   "WHERE dispatched_at IS NOT NULL").fetchone()["n"]
        return stored, dispatched, live
    return eventually(_retrying(read), timeout=60, message="PostgreSQL answers")


def _retrying(read):
    def attempt():
        try:
            return read()
        except psycopg.OperationalError:
            return None
    return attempt


def run_through_restart(settings, tmp_path, restart) -> None:
    with resources.assignment_connection(settings, autocommit=True) as conn:
        presence = Presence(resources.redis_client(settings), settings)
        factories.make_available(conn, presence, factories.add_operators(conn, 4, "US"),
                                 ttl=600)
    log = tmp_path / "processes.log"
    with log.open("wb") as logs, running(settings, "relay", "assignment", logs=logs,
                                         ASSIGNMENT_BATCH_SIZE=50, RELAY_BATCH_SIZE=100):
        with resources.relay_connection(settings) as relay:
            generate_events(relay, EVENTS, report=lambda _: None)
        eventually(lambda: counts(settings)[0] > 0, message="work under way")
        assert counts(settings)[0] < EVENTS, "finished before the restart: proves nothing"
        restart()
        eventually(lambda: counts(settings)[:2] == (EVENTS, EVENTS), timeout=180,
                   message="every event dispatched and stored after the restart")
    stored, dispatched, live = counts(settings)
    with resources.assignment_connection(settings) as conn:
        over_cap = conn.execute("SELECT count(*) AS n FROM operator_load WHERE live > %s",
                                [settings.MAX_ASSIGNMENTS]).fetchone()["n"]
        owners = conn.execute("SELECT count(*) AS n FROM (SELECT event_id FROM assignments "
                              "GROUP BY event_id HAVING count(*) > 1) t").fetchone()["n"]
    assert over_cap == 0 and owners == 0
    assert live == 200  # four operators at the cap; the rest waits
    assert "transient failure" in log.read_text() or "lost" in log.read_text()


def test_every_event_arrives_once_though_rabbitmq_restarts_mid_stream(settings, tmp_path):
    restartable("rabbitmqctl")
    run_through_restart(settings, tmp_path, rabbitmq_restart)


def test_every_event_arrives_once_though_postgresql_restarts_mid_stream(settings, tmp_path):
    restartable("pg_ctlcluster")
    run_through_restart(settings, tmp_path, postgres_restart)
