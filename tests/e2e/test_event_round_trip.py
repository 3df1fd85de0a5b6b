"""End to end: every process of `make up` but Prefect, over HTTP and the real queues.

An event inserted at the source reaches an operator who logs in through the API; the
operator's decisions come back to relay_service and finish their outbox rows, with no flow
run needed (the fast path).
"""

from __future__ import annotations

import httpx
import pytest

from common import resources
from tests import factories, helpers
from tests.processes import eventually, running, serving_api

pytestmark = pytest.mark.slow


def test_events_inserted_at_the_source_come_back_decided_through_every_process(
        settings, tmp_path):
    events = [factories.event("NA", severity=s) for s in (5, 3, 1)]
    conn = resources.assignment_connection(settings, autocommit=True)
    with (tmp_path / "processes.log").open("wb") as logs, \
            running(settings, "relay", "assignment", "inbound", "ack", logs=logs), \
            serving_api(settings, logs) as url, httpx.Client(base_url=url) as http:
        helpers.insert_source(settings, events)
        eventually(lambda: factories.waiting_count(conn) == 3, message="events waiting")

        login = http.post("/auth/login", json={"username": "john.smith", "password": "pass123"})
        assert login.status_code == 200
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        # The login answers before its backfill (an API thread) has assigned the work.
        def three_assigned():
            listed = http.get("/users/1/assignments", headers=auth).json()
            return listed if len(listed) == 3 else None

        mine = eventually(three_assigned, message="the waiting work assigned after the login")
        assert [a["severity"] for a in mine] == [5, 3, 1]

        first, second, third = (a["assignment_id"] for a in mine)
        assert http.put(f"/assignments/{first}", headers=auth,
                        json={"status": "completed"}).status_code == 200
        assert http.put(f"/assignments/{second}", headers=auth,
                        json={"status": "rejected", "reason": "false_alarm"}).status_code == 200
        assert http.put(f"/assignments/{second}", headers=auth,
                        json={"status": "approved"}).status_code == 409

        def round_trip_done():
            rows = [helpers.outbox_row(conn, a) for a in (first, second)]
            return all(r and r["status"] == "finished" for r in rows)

        eventually(round_trip_done, message="both outbox rows finished")
        assert http.post("/auth/logout", headers=auth).status_code == 204

    decided = {e.event_id: helpers.source_event(settings, e.event_id) for e in events}
    assert decided[events[0].event_id]["state"] == "Viewed"
    assert decided[events[0].event_id]["decision"] == "approved"
    assert decided[events[1].event_id]["decision"] == "rejected"
    assert decided[events[1].event_id]["decision_reason"] == "false_alarm"
    assert decided[events[2].event_id]["state"] == "Not Viewed"
    # Logging out released the undecided one: it waits again, owned by nobody.
    assert helpers.live_assignment(conn, events[2].event_id) is None
    assert factories.waiting_count(conn) == 1
