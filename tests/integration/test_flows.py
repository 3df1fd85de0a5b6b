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
from flows.reconcile_counters import reconcile_counters
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
    _, assignment_id = one_assignment(settings, conn)
    time.sleep(0.2)  # past the 60 ms expiry

    report = expire_assignments()

    assert report["released"] == 1
    released = conn.execute("SELECT release_reason FROM assignments WHERE assignment_id = %s",
                            [assignment_id]).fetchone()
    assert released["release_reason"] == "expired"


def test_cleanup_inactive_users_flow_releases_work_of_operators_without_a_session(
        settings, conn, flow_env):
    flow_env()
    operator, _ = one_assignment(settings, conn)
    conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second' "
                 "WHERE user_id = %s", [operator])

    report = cleanup_inactive_users()

    assert (report["released"], report["assigned"]) == (1, 0)
    assert operator not in Presence(redis_client(settings), settings).active_users()


def test_check_reviewed_flow_relays_unpublished_decisions(settings, conn, flow_env):
    flow_env()
    _, assignment_id = one_assignment(settings, conn)
    helpers.decide(settings, conn, assignment_id)

    assert check_reviewed() == {"relayed": 1}
    assert len(helpers.drain(settings, settings.name(broker.INBOUND))) == 1


def test_reconcile_counters_flow_corrects_corrupted_counters(settings, conn, flow_env):
    flow_env()
    operator, _ = one_assignment(settings, conn)
    presence = Presence(redis_client(settings), settings)
    presence.set_counts({operator: 40})

    report = reconcile_counters()

    assert report["counters_corrected"] == 1
    assert presence.counts()[operator] == 1
