"""prune-old-data: what is finished and older than RETENTION_DAYS goes; nothing else does."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from common.adapters.presence import Presence
from common.resources import redis_client, relay_connection
from common.services import assignment, retention
from tests import helpers, servers
from tests.factories import add_operators, event, make_available

OLD = "now() - interval '100 days'"


@pytest.fixture
def world(settings, conn):
    """Events in every state, some decided 100 days ago, some today; returns their ids."""
    presence = Presence(redis_client(settings), settings)
    (operator,) = add_operators(conn, 1, region="EU")
    make_available(conn, presence, [operator])
    names = ("old_done", "new_done", "old_unarrived", "old_live", "old_waiting")
    events = {name: event("EU", age_seconds=100 * 86400) for name in names}
    helpers.insert_source(settings, list(events.values()))
    assignment.receive(conn, presence, settings, [events[n] for n in names[:-1]])
    ids = {name: e.event_id for name, e in events.items()}
    for name in ("old_done", "new_done", "old_unarrived"):
        live = helpers.live_assignment(conn, ids[name])
        helpers.decide(settings, conn, live["assignment_id"])
    conn.execute(f"UPDATE assignments SET decided_at = {OLD}, created_at = {OLD} "
                 "WHERE event_id = ANY(%s)", [[ids["old_done"], ids["old_unarrived"]]])
    conn.execute(f"UPDATE assignments SET created_at = {OLD} WHERE event_id = %s",
                 [ids["old_live"]])
    conn.execute("UPDATE outbox_assignments SET status = 'finished', finished_at = now() "
                 "WHERE assignment_id IN (SELECT assignment_id FROM assignments "
                 "WHERE event_id = ANY(%s))", [[ids["old_done"], ids["new_done"]]])
    conn.execute(f"UPDATE outbox_assignments SET finished_at = {OLD} WHERE status = 'finished'"
                 " AND assignment_id IN (SELECT assignment_id FROM assignments WHERE event_id"
                 " = %s)", [ids["old_done"]])
    # old_waiting has waited 100 days (stored by hand: no routing runs on it here).
    conn.execute("INSERT INTO events (event_id, region, rule_type, location, severity, "
                 "device_id, camera_id, frame_reference, created_at, waiting_since) "
                 f"SELECT %s, 'EU', 'm', 'l', 3, 'd', 'c', 'f', {OLD}, {OLD}",
                 [ids["old_waiting"]])
    conn.execute(f"INSERT INTO dedup_events (event_id, created_at) VALUES (%s, {OLD})",
                 [ids["old_waiting"]])
    with relay_connection(settings, autocommit=True) as relay:
        for name, when in (("old_done", OLD), ("new_done", "now()")):
            relay.execute("UPDATE events SET state = 'Viewed', decision = 'approved', "
                          f"decided_at = {when} WHERE event_id = %s", [ids[name]])
    helpers.add_session(conn, operator, live=True)
    helpers.add_session(conn, operator, live=False)
    conn.execute(f"UPDATE sessions SET expires_at = {OLD} WHERE expires_at < now()")
    return ids


def present(conn, table: str, event_id) -> int:
    return conn.execute(f"SELECT count(*) AS n FROM {table} WHERE event_id = %s",  # noqa: S608
                        [event_id]).fetchone()["n"]


def test_only_finished_rows_older_than_the_limit_are_deleted(settings, conn, world):
    before = retention.cutoff(datetime.now(UTC), 90)

    deleted = retention.prune_assignment_service(conn, before, batch=2)
    with relay_connection(settings, autocommit=True) as relay:
        source = retention.prune_relay_service(relay, before, batch=2)

    assert deleted["events"] == 1 and deleted["dedup_events"] == 1
    assert deleted["assignments"] == 1 and deleted["outbox_assignments"] == 1
    assert deleted["assignment_history"] >= 2
    assert deleted["sessions"] == 1
    assert source["events"] == 1
    for table in ("events", "dedup_events", "assignments", "assignment_history"):
        assert present(conn, table, world["old_done"]) == 0
        for kept in ("new_done", "old_unarrived", "old_live"):
            assert present(conn, table, world[kept]) >= 1, (table, kept)
    assert present(conn, "events", world["old_waiting"]) == 1
    assert conn.execute("SELECT count(*) AS n FROM sessions WHERE expires_at < %s",
                        [before]).fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM sessions WHERE expires_at > now()"
                        ).fetchone()["n"] >= 1
    with relay_connection(settings) as relay:
        left = {r["event_id"] for r in relay.execute("SELECT event_id FROM events")}
    assert left == set(world.values()) - {world["old_done"]}


def test_a_second_prune_finds_nothing_more(settings, conn, world):
    before = retention.cutoff(datetime.now(UTC), 90)
    retention.prune_assignment_service(conn, before, batch=100)
    again = retention.prune_assignment_service(conn, before, batch=100)
    assert sum(again.values()) == 0


def test_a_shorter_retention_reaches_newer_rows_but_never_live_or_waiting_work(
        settings, conn, world):
    before = datetime.now(UTC) + timedelta(minutes=1)  # everything finished is "old"
    deleted = retention.prune_assignment_service(conn, before, batch=1)
    assert deleted["events"] == 2  # old_done and new_done; old_unarrived has not arrived
    for kept in ("old_unarrived", "old_live", "old_waiting"):
        assert present(conn, "events", world[kept]) == 1


def test_the_prune_flow_reports_rows_deleted_per_table(settings, conn, world, monkeypatch,
                                                       prefect_harness):
    for key, value in servers.settings_env(settings).items():
        if key in type(settings).model_fields:
            monkeypatch.setenv(key, value)
    from flows.prune_old_data import prune_old_data
    from tests.integration.test_flows import artifact_of

    state = prune_old_data(return_state=True)

    result = state.result()
    assert result[f"{settings.POSTGRES_DB_ASSIGNMENT}.events"] == 1
    assert result[f"{settings.POSTGRES_DB_RELAY}.events"] == 1
    text = artifact_of(state)
    assert f"| {settings.POSTGRES_DB_RELAY} | events | 1 |" in text
    assert os.environ.get("RETENTION_DAYS", "90") == "90"
