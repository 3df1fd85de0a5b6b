"""The assignment consumer process: bad messages contained, nothing lost when killed."""

from __future__ import annotations

import json
import signal

import pytest

from common import resources
from common.adapters import broker
from common.adapters.presence import Presence
from tests import factories, helpers
from tests.integration.test_assignment_race import publish_events, stored
from tests.processes import eventually, running

pytestmark = pytest.mark.slow


def good(**changes) -> bytes:
    payload = factories.message(factories.event())
    payload.update(changes)
    return json.dumps(payload).encode()


BAD = {
    "invalid JSON": b'{"eventId": ',
    "invalid UTF-8": b'{"eventId": "\xff\xfe"}',
    "not an object": b"[1, 2, 3]",
    "missing field": json.dumps({"eventId": "7d8f5b1a-2f4e-4c43-9d39-5a1f0e8f2b11"}).encode(),
    "mistyped severity": good(severity="5"),
    "unknown region": good(region="MARS"),
    "severity out of range": good(severity=9),
    "unparseable id": good(eventId="not-a-uuid"),
    # Valid JSON that PostgreSQL could not store (text cannot hold NUL): refused by the model.
    "text the database cannot hold": good(frameReference="frame\u0000ref"),
}


def test_every_malformed_kind_is_dead_lettered_with_its_reason_while_valid_work_flows(settings):
    conn = resources.assignment_connection(settings, autocommit=True)
    valid = [good() for _ in range(40)]
    bodies = valid[:20] + list(BAD.values()) + valid[20:]
    with running(settings, "assignment", ASSIGNMENT_BATCH_SIZE=100):
        helpers.publish_raw(settings, broker.OUTBOUND, bodies)
        eventually(lambda: stored(conn) == 40, message="the 40 valid events stored")
        dlq = broker.dlq_name(settings.name(broker.OUTBOUND))
        dead = eventually(lambda: (d := helpers.drain(settings, dlq)) and d, message="dead letters")
        while len(dead) < len(BAD):
            dead += eventually(lambda: helpers.drain(settings, dlq), timeout=30)
    assert sorted(body for body, _ in dead) == sorted(BAD.values())
    reasons = {body: headers["x-death-reason"] for body, headers in dead}
    assert "invalid JSON" in reasons[BAD["invalid JSON"]]
    assert "UTF-8" in reasons[BAD["invalid UTF-8"]]
    assert "region" in reasons[BAD["unknown region"]]
    assert "severity" in reasons[BAD["severity out of range"]]
    assert "NUL" in reasons[BAD["text the database cannot hold"]]
    assert all(h["x-original-queue"] == settings.name(broker.OUTBOUND) for _, h in dead)
    assert factories.waiting_count(conn) == 40


def test_a_consumer_killed_mid_stream_loses_nothing(settings):
    conn = resources.assignment_connection(settings, autocommit=True)
    presence_ops = factories.add_operators(conn, 4, "US")
    presence = Presence(resources.redis_client(settings), settings)
    factories.make_available(conn, presence, presence_ops)
    events = [factories.event() for _ in range(3000)]
    publish_events(settings, events)
    with running(settings, "assignment", ASSIGNMENT_BATCH_SIZE=50) as [proc]:
        eventually(lambda: stored(conn) > 0, message="consumer started storing")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert stored(conn) < 3000, "killed after it had finished: the test proves nothing"
    with running(settings, "assignment"):
        eventually(lambda: stored(conn) == 3000, message="every event stored after restart")
        eventually(lambda: sum(factories.live_by_user(conn).values()) == 200)
    assert factories.waiting_count(conn) == 2800
    duplicates = conn.execute(
        "SELECT count(*) AS n FROM (SELECT event_id FROM assignments GROUP BY event_id "
        "HAVING count(*) > 1) t"
    ).fetchone()["n"]
    assert duplicates == 0


def kill_server_connections(settings) -> int:
    """Terminate every PostgreSQL backend on the test's assignment database but ours, and
    every Redis connection: what a server restart does to its clients."""
    with resources.assignment_connection(settings, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()["n"]
    resources.redis_client(settings).client_kill_filter(_type="normal", skipme=True)
    return killed


def test_the_consumer_rides_out_its_database_and_redis_connections_dropping(settings, tmp_path):
    conn = resources.assignment_connection(settings, autocommit=True)
    presence = Presence(resources.redis_client(settings), settings)
    factories.make_available(conn, presence, factories.add_operators(conn, 4, "US"))
    publish_events(settings, [factories.event() for _ in range(4000)])
    log = tmp_path / "assignment.log"
    with log.open("wb") as logs, running(settings, "assignment", logs=logs,
                                         ASSIGNMENT_BATCH_SIZE=50) as [proc]:
        eventually(lambda: stored(conn) > 0, message="consumer started storing")
        assert stored(conn) < 4000, "finished before the kill: the test proves nothing"
        conn.close()
        killed = sum(kill_server_connections(settings) for _ in range(3))
        assert killed >= 1
        conn = resources.assignment_connection(settings, autocommit=True)
        eventually(lambda: stored(conn) == 4000, message="every event stored")
        eventually(lambda: sum(factories.live_by_user(conn).values()) == 200)
        assert proc.poll() is None, "the consumer died instead of retrying"
    assert "transient failure" in log.read_text()
    assert factories.waiting_count(conn) == 3800
