"""The four flows of the review loop, each run once by the Prefect engine.

Each flow reads its settings from the environment, as a deployment run does; the test
points the environment at its own databases and namespace.
"""

from __future__ import annotations

import time

import pytest

from common.adapters import broker
from common.adapters.presence import Presence
from common.resources import redis_client
from common.services import assignment
from flows.check_reviewed import check_reviewed
from flows.cleanup_inactive_users import cleanup_inactive_users
from flows.expire_assignments import expire_assignments
from flows.generate_events import generate_events
from flows.reconcile_counters import reconcile_counters
from flows.relay_poll import relay_poll
from tests import helpers, servers
from tests.factories import add_operators, event, make_available


@pytest.fixture
def flow_env(settings, monkeypatch, prefect_harness):
    """The environment a deployment run would have, for this test's settings."""
    def apply(**overrides):
        values = settings.model_copy(update=overrides)
        for key, value in servers.settings_env(values).items():
            if key in type(values).model_fields:
                monkeypatch.setenv(key, value)
        return values
    return apply


def artifact_of(state) -> str:
    """The markdown report the flow run of `state` published (exactly one)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    assert len(found) == 1, found
    assert found[0].type == "markdown"
    return found[0].data


def one_assignment(settings, conn) -> tuple[int, int]:
    """An EU operator (available, with a live session) holding one event: (user, id)."""
    presence = Presence(redis_client(settings), settings)
    (operator,) = add_operators(conn, 1, region="EU")
    make_available(conn, presence, [operator])
    e = event("EU")
    helpers.insert_source(settings, [e])
    assignment.receive(conn, presence, settings, [e])
    return operator, helpers.live_assignment(conn, e.event_id)["assignment_id"]


def test_expire_assignments_flow_reports_what_it_released(settings, conn, flow_env):
    flow_env(ASSIGNMENT_EXPIRY_MINUTES=0.001)
    operator, assignment_id = one_assignment(settings, conn)
    time.sleep(0.2)  # past the 60 ms expiry

    state = expire_assignments(return_state=True)

    report = state.result()
    assert report["released"] == 1
    text = artifact_of(state)
    assert "| released | 1 |" in text
    assert "## Released per operator" in text
    assert f"| {operator} | " in text
    released = conn.execute("SELECT release_reason FROM assignments WHERE assignment_id = %s",
                            [assignment_id]).fetchone()
    assert released["release_reason"] == "expired"


def test_cleanup_inactive_users_flow_releases_work_of_operators_without_a_session(
        settings, conn, flow_env):
    flow_env()
    operator, _ = one_assignment(settings, conn)
    conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second' "
                 "WHERE user_id = %s", [operator])

    state = cleanup_inactive_users(return_state=True)

    report = state.result()
    assert (report["released"], report["assigned"]) == (1, 0)
    assert f"| {operator} | " in artifact_of(state)
    assert operator not in Presence(redis_client(settings), settings).active_users()


def test_check_reviewed_flow_relays_unpublished_decisions(settings, conn, flow_env):
    flow_env()
    _, assignment_id = one_assignment(settings, conn)
    helpers.decide(settings, conn, assignment_id)

    state = check_reviewed(return_state=True)
    assert state.result() == {"relayed": 1}
    assert "| republished | 1 |" in artifact_of(state)
    assert len(helpers.drain(settings, settings.name(broker.INBOUND))) == 1


def test_reconcile_counters_flow_corrects_corrupted_counters(settings, conn, flow_env):
    flow_env()
    operator, _ = one_assignment(settings, conn)
    presence = Presence(redis_client(settings), settings)
    presence.set_counts({operator: 40})

    state = reconcile_counters(return_state=True)

    report = state.result()
    assert report["counters_corrected"] == 1
    text = artifact_of(state)
    assert "| counters corrected | 1 |" in text and f"| {operator} | 40 | 1 |" in text
    assert presence.counts()[operator] == 1


def test_relay_poll_flow_reports_what_it_dispatched(settings, flow_env):
    flow_env()
    helpers.insert_source(settings, [event("NA"), event("EU")])

    state = relay_poll(return_state=True)

    assert state.result() == {"dispatched": 2, "redispatched": 0}
    text = artifact_of(state)
    assert "| dispatched | 2 |" in text and "| redispatched | 0 |" in text


def test_generate_events_flow_reports_events_per_region_and_severity(settings, flow_env):
    flow_env()

    state = generate_events(count=40, return_state=True)

    assert state.result() == 40
    text = artifact_of(state)
    assert "| generated | 40 |" in text
    rows = [line for line in text.splitlines()
            if line.startswith("| ") and line.split(" | ")[0][2:] in helpers_regions()]
    assert sum(int(line.rstrip(" |").split(" | ")[-1]) for line in rows) == 40


def test_a_flow_that_fails_shows_as_a_failed_run_and_is_not_retried_for_a_bad_input(
        settings, flow_env):
    flow_env()

    state = generate_events(count=0, return_state=True)

    assert state.is_failed()


def test_only_transient_failures_are_retried():
    from prefect.states import Failed

    from common.adapters.broker import PublishError
    from flows.reports import retry_if_transient

    def failed(error):
        return Failed(data=error)

    assert retry_if_transient(None, None, failed(PublishError("unconfirmed")))
    assert retry_if_transient(None, None, failed(ConnectionRefusedError()))
    assert not retry_if_transient(None, None, failed(ValueError("a bug")))
    assert not retry_if_transient(None, None, failed(KeyError("bad data")))


def helpers_regions() -> tuple[str, ...]:
    return ("NA", "EU", "APAC", "LATAM")
