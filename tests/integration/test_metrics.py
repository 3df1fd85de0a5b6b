"""Metrics on real servers: each consumer's own port, and the API's /metrics.

The consumers run as real processes on free ports (METRICS_PORT); the figures are read
back over HTTP in Prometheus text format and compared with what the databases hold.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from common.adapters.presence import Presence
from common.api.app import create_app
from common.resources import publisher, redis_client
from common.services import assignment, outbox
from tests import factories, helpers
from tests.integration import waiting
from tests.processes import eventually, free_port, pid_alive, running
from tests.unit.test_prometheus_config import alert_metrics


def scrape(url: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    text = httpx.get(url, timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def port_samples(port: int) -> dict:
    """The samples a process serves on `port`; none while it is not serving yet."""
    try:
        return scrape(f"http://127.0.0.1:{port}/metrics")
    except httpx.HTTPError:
        return {}


def port_value(port: int, name: str, **labels) -> float:
    return value(port_samples(port), name, **labels) or 0


@pytest.fixture
def operator(settings, conn):
    """One available NA operator."""
    presence = Presence(redis_client(settings), settings)
    (user_id,) = factories.add_operators(conn, 1, region="US")
    factories.make_available(conn, presence, [user_id])
    return user_id


def test_relay_and_assignment_count_what_they_did_on_their_own_ports(settings, conn, operator):
    relay_port, assignment_port = free_port(), free_port()
    with running(settings, "relay", METRICS_PORT=relay_port), \
            running(settings, "assignment", METRICS_PORT=assignment_port):
        helpers.insert_source(settings, [factories.event("NA") for _ in range(5)])
        eventually(lambda: port_value(relay_port, "events_relayed_total") == 5,
                   message="the relay counts 5 relayed")
        eventually(lambda: port_value(assignment_port, "events_assigned_total") == 5,
                   message="the assignment consumer counts 5 assigned")
        samples = scrape(f"http://127.0.0.1:{assignment_port}/metrics")
    assert value(samples, "event_insert_to_assigned_seconds_count") == 5
    assert value(samples, "event_insert_to_assigned_seconds_bucket", le="60.0") == 5
    assert value(samples, "event_insert_to_assigned_seconds_sum") > 0
    assert len(factories.live_by_user(conn)) == 1


def test_inbound_and_ack_count_decisions_and_the_time_from_decision_to_viewed(
        settings, conn, operator):
    presence = Presence(redis_client(settings), settings)
    events = [factories.event("NA") for _ in range(3)]
    helpers.insert_source(settings, events)
    assignment.receive(conn, presence, settings, events)
    ids = [helpers.live_assignment(conn, e.event_id)["assignment_id"] for e in events]
    for assignment_id, status in zip(ids, ("approved", "rejected", "approved"), strict=True):
        helpers.decide(settings, conn, assignment_id, status)
    inbound_port, ack_port = free_port(), free_port()
    with running(settings, "inbound", METRICS_PORT=inbound_port), \
            running(settings, "ack", METRICS_PORT=ack_port), \
            publisher(settings, "test-outbox") as pub:
        assert outbox.publish_decided(conn, pub, settings, ids[:2]) == 2
        eventually(lambda: port_value(ack_port, "outbox_finished_total") == 2,
                   message="the ack consumer counts 2 finished")
        # A copy of the first decision (a redelivery) before the third: applied once only.
        row = conn.execute(_DECIDED, [ids[0]]).fetchone()
        helpers.publish_raw(settings, "events.inbound", [outbox.decision_message(row)])
        assert outbox.publish_decided(conn, pub, settings, ids[2:]) == 1
        eventually(lambda: port_value(ack_port, "outbox_finished_total") == 3,
                   message="the ack consumer counts 3 finished")
        samples = scrape(f"http://127.0.0.1:{inbound_port}/metrics")
    assert value(samples, "decisions_viewed_total", decision="approved") == 2
    assert value(samples, "decisions_viewed_total", decision="rejected") == 1
    assert value(samples, "decision_to_viewed_seconds_count") == 3
    assert value(samples, "decision_to_viewed_seconds_bucket", le="60.0") == 3


_DECIDED = """
    SELECT assignment_id, event_id, status AS decision, decision_reason, decision_note,
           decided_by, decided_at
    FROM assignments WHERE assignment_id = %s
"""


def test_a_dead_lettered_message_is_counted_by_queue_and_kind(settings):
    port = free_port()
    with running(settings, "assignment", METRICS_PORT=port):
        helpers.publish_raw(settings, "events.outbound", [b"{not json", b"[1, 2]"])
        eventually(lambda: sum(
            v for (name, labels), v in port_samples(port).items()
            if name == "messages_dead_lettered_total"
            and ("queue", "events.outbound") in labels) == 2,
            message="two dead letters counted")
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
    reasons = {dict(labels)["reason"] for (name, labels) in samples
               if name == "messages_dead_lettered_total"}
    assert reasons and all(" " not in r and len(r) < 40 for r in reasons), reasons


def test_a_second_copy_finds_its_port_taken_logs_one_line_and_keeps_working(
        settings, conn, operator, tmp_path):
    port = free_port()
    log_file = tmp_path / "copies.log"
    with log_file.open("wb") as logs, \
            running(settings, "assignment", copies=2, logs=logs, METRICS_PORT=port) as procs:
        eventually(lambda: "is taken" in log_file.read_text(), message="one copy says so")
        helpers.publish_raw(settings, "events.outbound",
                            [factories.message(factories.event("NA")) for _ in range(20)])
        eventually(lambda: sum(factories.live_by_user(conn).values()) == 20,
                   message="20 events assigned by the two copies")
        time.sleep(1)
        assert all(pid_alive(p) for p in procs)
        # The first copy serves its own figures (which copy took the work is the broker's
        # choice, so only that it answers is certain).
        assert value(port_samples(port), "events_assigned_total") is not None
    assert log_file.read_text().count("is taken") == 1


def test_metrics_port_zero_serves_nothing(settings, tmp_path):
    log_file = tmp_path / "off.log"
    with log_file.open("wb") as logs, running(settings, "ack", logs=logs, METRICS_PORT=0):
        eventually(lambda: "metrics off" in log_file.read_text(), message="it says so")


# ---- the API's /metrics ------------------------------------------------------------------

def api_samples(client: TestClient) -> dict:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def test_the_api_metrics_match_the_database(settings, conn, operator):
    waiting.add_waiting_events(settings, 3, region="EU")
    waiting.add_waiting_events(settings, 2, region="APAC", severity=5, age_seconds=600)
    presence = Presence(redis_client(settings), settings)
    helpers.add_session(conn, operator)
    assignment.receive(conn, presence, settings, [factories.event("NA") for _ in range(4)])
    helpers.publish_raw(settings, "events.inbound", [b"x"])
    redis_client(settings).hset(settings.name("heartbeats"), "relay:host:1",
                                json.dumps({"time": time.time()}))
    with TestClient(create_app(settings)) as client:
        samples = api_samples(client)
    assert value(samples, "assignment_waiting_events", region="EU") == 3
    assert value(samples, "assignment_waiting_events", region="APAC") == 2
    assert value(samples, "assignment_waiting_events", region="NA") == 0
    assert value(samples, "assignment_live_assignments", region="NA") == 4
    assert value(samples, "assignment_live_assignments", region="EU") == 0
    assert value(samples, "assignment_events_breaching_target", region="APAC") == 2
    assert value(samples, "assignment_events_breaching_target", region="EU") == 0
    assert value(samples, "assignment_available_operators", region="NA") == 1
    assert value(samples, "assignment_available_operators", region="EU") == 0
    assert value(samples, "assignment_outbox_unfinished") == 0
    assert value(samples, "assignment_queue_messages", queue="events.inbound") == 1
    assert value(samples, "assignment_queue_messages", queue="events.inbound.dlq") == 0
    assert value(samples, "assignment_process_up", process="relay") == 1
    assert value(samples, "assignment_process_up", process="ack") == 0
    # Every metric an alert rule reads is on the page.
    assert alert_metrics() - {"up"} <= {name for name, _ in samples}


def test_the_api_counts_its_requests_by_route_template_and_decisions_by_outcome(settings):
    with TestClient(create_app(settings)) as client:
        before = api_samples(client)
        assert client.post("/auth/login", json={"username": "john.smith",
                                                "password": "nope"}).status_code == 401
        assert client.put("/assignments/77", json={"status": "approved"}).status_code == 401
        after = api_samples(client)

    def moved(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert moved("api_logins_total", result="refused") == 1
    assert moved("api_decisions_total", outcome="unauthorized") == 1
    assert moved("api_requests_total", method="PUT", route="/assignments/{assignment_id}",
                 status="401") == 1
    assert not any("/assignments/77" in str(labels) for (_, labels) in after)


def test_the_api_metrics_cache_one_reading_for_a_moment(settings):
    with TestClient(create_app(settings.model_copy(
            update={"METRICS_CACHE_SECONDS": 30}))) as client:
        first = api_samples(client)
        waiting.add_waiting_events(settings, 2, region="EU")
        assert value(api_samples(client), "assignment_waiting_events", region="EU") == \
            value(first, "assignment_waiting_events", region="EU") == 0


def test_a_broker_that_does_not_answer_gives_no_queue_samples_and_no_500(settings):
    down = settings.model_copy(update={"RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:"
                                                       f"{free_port()}/%2F"})
    waiting.add_waiting_events(settings, 1, region="LATAM")
    with TestClient(create_app(down)) as client:
        started = time.monotonic()
        samples = api_samples(client)
        took = time.monotonic() - started
    assert not any(name == "assignment_queue_messages" for (name, _) in samples)
    assert value(samples, "assignment_waiting_events", region="LATAM") == 1
    print(f"scrape with the broker down took {took:.2f}s")


def test_scrapes_further_apart_than_the_broker_heartbeat_keep_their_queue_samples(
        settings, caplog):
    """Prometheus off, someone scrapes by hand now and then: the kept broker connection
    must still be open (answered heartbeats) and the scrape carry every queue's depth."""
    quick = settings.model_copy(update={"RABBITMQ_HEARTBEAT_SECONDS": 1,
                                        "METRICS_CACHE_SECONDS": 0})
    with TestClient(create_app(quick)) as client:
        api_samples(client)
        queues = client.app.state.system_metrics._queues
        first = queues._connection
        with caplog.at_level(logging.INFO):
            time.sleep(4)  # twice the heartbeat and more with no scrape
            samples = api_samples(client)
        assert queues._connection is first and first.is_open
    assert first.is_closed  # the API's shutdown closed it
    depths = {labels for (name, labels) in samples if name == "assignment_queue_messages"}
    assert len(depths) == 6, samples.keys()
    assert not [r for r in caplog.records if r.levelno >= logging.INFO
                and r.name.startswith(("pika", "common.api.metrics"))], caplog.text
