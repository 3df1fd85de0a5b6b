"""The supervision endpoints (DESIGN.md "Supervision") against the real servers: release,
move, stories, the audit trail (JSON pages and CSV) and a region's metrics."""

from __future__ import annotations

import csv
import io
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from common.adapters import broker
from common.adapters.presence import Presence
from common.api.app import create_app
from common.resources import assignment_connection, redis_client
from common.services import sessions
from tests.integration.supervision_helpers import NINA, add_second_us_operator
from tests.integration.waiting import add_waiting_events, execute, history, query

JOHN = 1


class SettledClient(TestClient):
    """A test client whose every call returns once the API's backfill and fast-path threads
    have done what the call asked of them (a login's backfill, a release's routing)."""

    def request(self, *args, **kwargs):
        answer = super().request(*args, **kwargs)
        resources = self.app.state.resources
        assert resources.backfill.settle() and resources.fast_path.settle()
        return answer


@pytest.fixture
def client(settings):
    capped = settings.model_copy(update={"MAX_ASSIGNMENTS": 2})
    with SettledClient(create_app(capped)) as test_client:
        yield test_client


def login(client, username: str) -> dict:
    answer = client.post("/auth/login", json={"username": username, "password": "pass123"})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def live(settings, user_id: int) -> list[int]:
    rows = query(settings, "SELECT assignment_id FROM assignments WHERE user_id = %s AND "
                 "status = 'pending' AND NOT deleted ORDER BY assignment_id", [user_id])
    return [r["assignment_id"] for r in rows]


@pytest.fixture
def john(client, settings) -> dict:
    add_waiting_events(settings, 1, region="NA", severity=5)
    add_waiting_events(settings, 1, region="NA", severity=2)
    return login(client, "john.smith")


def test_login_and_live_work_carry_the_cap_and_expiry(client, settings):
    add_waiting_events(settings, 1, region="NA")
    answer = client.post("/auth/login", json={"username": "john.smith", "password": "pass123"})
    assert answer.json()["user"]["max_assignments"] == 2
    headers = {"Authorization": f"Bearer {answer.json()['token']}"}
    [item] = client.get("/users/1/assignments", headers=headers).json()
    created = datetime.fromisoformat(item["created_at"])
    expires = datetime.fromisoformat(item["expires_at"])
    assert expires - created == timedelta(minutes=settings.ASSIGNMENT_EXPIRY_MINUTES)


def test_a_reject_reason_outside_the_list_is_refused_and_a_listed_one_kept(client, john,
                                                                           settings):
    first, _ = live(settings, JOHN)
    bad = client.put(f"/assignments/{first}", headers=john,
                     json={"status": "rejected", "reason": "a cat again"})
    assert bad.status_code == 422
    good = client.put(f"/assignments/{first}", headers=john,
                      json={"status": "rejected", "reason": "other", "note": "a cat again"})
    assert good.status_code == 200, good.text
    row = query(settings, "SELECT decision_reason, decision_note FROM assignments "
                "WHERE assignment_id = %s", [first])[0]
    assert row == {"decision_reason": "other", "decision_note": "a cat again"}


def test_an_operator_releases_their_own_work_and_nobody_elses(client, john, settings):
    first, second = live(settings, JOHN)
    answer = client.post(f"/assignments/{first}/release", headers=john)
    assert answer.status_code == 200, answer.text
    assert answer.json()["release_reason"] == "released_by_operator"
    assert history(settings, first)[-1][:3] == ("pending", "released", "released_by_operator")
    again = client.post(f"/assignments/{first}/release", headers=john)
    assert again.status_code == 409
    emma = login(client, "emma.wilson")
    assert client.post(f"/assignments/{second}/release", headers=emma).status_code == 403
    assert client.post("/assignments/999999/release", headers=john).status_code == 404


def test_a_supervisor_releases_work_of_their_region(client, john, settings):
    first, _ = live(settings, JOHN)
    sarah = login(client, "sarah.connor")
    answer = client.post(f"/assignments/{first}/release", headers=sarah)
    assert answer.status_code == 200, answer.text
    assert history(settings, first)[-1] == ("pending", "released", "released_by_supervisor",
                                            "sarah.connor", 5)


def test_a_move_gives_the_event_to_another_operator_in_one_step(client, john, settings):
    add_second_us_operator(settings)
    login(client, "nina.park")
    [first, _] = live(settings, JOHN)
    event_id = query(settings, "SELECT event_id FROM assignments WHERE assignment_id = %s",
                     [first])[0]["event_id"]
    sarah = login(client, "sarah.connor")
    answer = client.post(f"/assignments/{first}/move", headers=sarah, json={"user_id": NINA})
    assert answer.status_code == 200, answer.text
    moved = answer.json()
    assert (moved["user_id"], moved["event_id"], moved["status"]) == (NINA, str(event_id),
                                                                      "pending")
    old = query(settings, "SELECT deleted, release_reason FROM assignments "
                "WHERE assignment_id = %s", [first])[0]
    assert old == {"deleted": True, "release_reason": "moved"}
    [(prev, state, reason, actor, actor_id)] = history(settings, first)[-1:]
    assert (prev, state, actor, actor_id) == ("pending", "moved", "sarah.connor", 5)
    assert f"user {JOHN}" in reason and f"user {NINA}" in reason
    assert query(settings, "SELECT live FROM operator_load WHERE user_id = %s",
                 [NINA])[0]["live"] == len(live(settings, NINA))
    story = client.get(f"/events/{event_id}/history", headers=sarah).json()
    assert [r["new_state"] for r in story] == ["pending", "moved", "pending"]


def test_a_move_respects_region_cap_availability_and_presence(client, john, settings):
    add_second_us_operator(settings)
    first, second = live(settings, JOHN)
    sarah = login(client, "sarah.connor")
    move = lambda a, u: client.post(f"/assignments/{a}/move", headers=sarah,  # noqa: E731
                                    json={"user_id": u})
    assert move(first, NINA).status_code == 409          # no live session, not available
    assert move(first, 6).status_code == 422             # Mike Ross serves EU
    assert move(first, 5).status_code == 422             # a supervisor
    assert move(first, JOHN).status_code == 422          # already his
    assert move(first, 4242).status_code == 404
    nina = login(client, "nina.park")
    add_waiting_events(settings, 4, region="NA", severity=1)
    client.post("/auth/heartbeat", headers=nina)
    assert len(live(settings, NINA)) == 2                # at the cap of 2
    assert move(first, NINA).status_code == 409
    assert "cap" in move(first, NINA).json()["detail"]
    emma = login(client, "emma.wilson")
    assert client.post(f"/assignments/{second}/move", headers=emma,
                       json={"user_id": NINA}).status_code == 403
    assert client.post(f"/assignments/{second}/move", headers=nina,
                       json={"user_id": JOHN}).status_code == 403
    assert first in live(settings, JOHN)


def test_the_audit_trail_pages_newest_first_and_its_csv_matches_the_table(client, john,
                                                                          settings):
    first, second = live(settings, JOHN)
    client.put(f"/assignments/{first}", headers=john, json={"status": "approved"})
    client.put(f"/assignments/{second}", headers=john,
               json={"status": "rejected", "reason": "duplicate"})
    sarah = login(client, "sarah.connor")
    page = client.get("/regions/NA/history?limit=3", headers=sarah).json()
    rows = query(settings, "SELECT * FROM assignment_history ORDER BY at DESC, id DESC")
    assert [r["id"] for r in page["items"]] == [r["id"] for r in rows[:3]]
    rest = client.get("/regions/NA/history", headers=sarah,
                      params={"limit": 3, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in page["items"] + rest["items"]] == [r["id"] for r in rows]
    only_john = client.get("/regions/NA/history", headers=sarah,
                           params={"user_id": 5}).json()
    assert only_john["items"] == []
    answer = client.get("/regions/NA/history", headers=sarah | {"Accept": "text/csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(r["id"]) for r in table] == [r["id"] for r in rows]
    assert [r["reason"] for r in table] == [r["reason"] or "" for r in rows]
    assert client.get("/regions/EU/history", headers=sarah).status_code == 403
    assert client.get("/regions/NA/history", headers=john).status_code == 403
    assert client.get("/regions/NA/history?cursor=nonsense",
                      headers=sarah).status_code == 422
    assert client.get(f"/assignments/{first}/history", headers=john).status_code == 200


def test_metrics_count_decisions_reasons_releases_and_breaches(client, john, settings):
    first, second = live(settings, JOHN)
    client.put(f"/assignments/{first}", headers=john,
               json={"status": "rejected", "reason": "false_alarm"})
    client.post(f"/assignments/{second}/release", headers=john)
    # An old undecided severity 5 event: far past its 1-minute target.
    add_waiting_events(settings, 1, region="NA", severity=5, age_seconds=600)
    execute(settings, "UPDATE assignments SET decision_reason = 'legacy free text' "
            "WHERE assignment_id = %s", [first])
    sarah = login(client, "sarah.connor")
    answer = client.get("/regions/NA/metrics", headers=sarah)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["decisions"] == [{"outcome": "rejected", "reason": "other", "count": 1}]
    assert {"reason": "released_by_operator", "count": 1} in body["releases"]
    assert [b["severity"] for b in body["breaches"]][:1] == [5]
    assert body["breach_count"] >= 1 and body["breaches"][0]["over_seconds"] > 500
    assert {r["severity"] for r in body["time_to_assign"]} >= {5, 2}
    assert body["time_to_decide"][0]["count"] == 1
    assert sum(r["count"] for r in body["events_per_minute"]) == 3
    assert body["by_rule_type"][0]["key"] == "motion_detection"
    assert body["now"]["live_assignments"] == len(live(settings, JOHN))
    assert body["max_assignments"] == 2 and body["response_target_minutes"]["5"] == 1
    assert client.get("/regions/NA/metrics", headers=john).status_code == 403
    now = datetime.now(UTC)
    inverted = client.get("/regions/NA/metrics", headers=sarah,
                          params={"from": now.isoformat(), "to": (now - timedelta(1)).isoformat()})
    assert inverted.status_code == 200 and inverted.json()["decisions"] == []
    assert client.get("/regions/NA/metrics", headers=sarah,
                      params={"to": "1700000000"}).status_code == 422


def test_a_move_waits_for_a_racing_unavailable_and_then_refuses(client, john, settings):
    """The target is made unavailable by a transaction that has not committed yet when the
    move starts: the move must wait for it (the router's share lock on the users row) and
    then refuse, instead of giving work to someone who just said "no more"."""
    add_second_us_operator(settings)
    login(client, "nina.park")
    first, _ = live(settings, JOHN)
    sarah = login(client, "sarah.connor")
    nina = query(settings, "SELECT * FROM users WHERE id = %s", [NINA])[0]
    presence = Presence(redis_client(settings), settings)
    answers = []
    with assignment_connection(settings) as conn, conn.transaction():
        # The real service, inside an outer transaction: its UPDATE holds the row lock.
        sessions.set_available(conn, presence, settings, nina, on=False)
        mover = threading.Thread(target=lambda: answers.append(client.post(
            f"/assignments/{first}/move", headers=sarah, json={"user_id": NINA})))
        mover.start()
        assert _waits_for_a_lock(settings, mover), "the move did not wait for the users row"
    mover.join(timeout=30)
    assert answers and answers[0].status_code == 409, answers and answers[0].text
    assert first in live(settings, JOHN) and live(settings, NINA) == []
    assert query(settings, "SELECT live FROM operator_load WHERE user_id = %s",
                 [NINA])[0]["live"] == 0


def _waits_for_a_lock(settings, thread: threading.Thread, timeout: float = 30) -> bool:
    """True once another backend of this database waits for a lock; False if the thread
    finished first (it never waited) or the timeout passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        waiting = query(settings, "SELECT count(*) AS n FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'")
        if waiting[0]["n"]:
            return True
        time.sleep(0.05)
    return False


def test_the_polled_reads_answer_304_while_nothing_changed(client, john, settings):
    first, _ = live(settings, JOHN)
    sarah = login(client, "sarah.connor")
    reads = [("/users/1/assignments", john), ("/regions/NA/overview", sarah),
             ("/regions/NA/now", sarah), (f"/assignments/{first}/history", john)]
    tags = {}
    for path, headers in reads:
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200 and answer.headers["etag"], (path, answer.text)
        tags[path] = answer.headers["etag"]
        again = client.get(path, headers=headers | {"If-None-Match": tags[path]})
        assert (again.status_code, again.content) == (304, b""), path
        assert again.headers["etag"] == tags[path]
        other = client.get(path, headers=headers | {"If-None-Match": '"something else"'})
        assert other.status_code == 200 and other.json() == answer.json(), path
    client.put(f"/assignments/{first}", headers=john, json={"status": "approved"})
    for path, headers in reads:
        changed = client.get(path, headers=headers | {"If-None-Match": tags[path]})
        assert changed.status_code == 200, path
        assert changed.headers["etag"] != tags[path], path
    assert "etag" not in client.get("/health").headers
    csv_answer = client.get("/regions/NA/history", headers=sarah | {"Accept": "text/csv"})
    assert "etag" not in csv_answer.headers


def test_now_has_the_region_and_the_queue_and_dead_letter_depths(settings):
    uncached = settings.model_copy(update={"METRICS_CACHE_SECONDS": 0})
    with SettledClient(create_app(uncached)) as client:
        add_waiting_events(settings, 1, region="NA", severity=4)
        john = login(client, "john.smith")
        [first] = live(settings, JOHN)
        client.put(f"/assignments/{first}", headers=john, json={"status": "approved"})
        add_waiting_events(settings, 1, region="NA", severity=4, age_seconds=60)
        client.delete("/users/1/active", headers=john)
        with broker.connect(settings, "test-now") as connection:
            channel = connection.channel()
            channel.confirm_delivery()
            broker.declare_queues(channel, settings)
            channel.basic_publish("", broker.dlq_name(settings.name(broker.ACK)), b"{}",
                                  mandatory=True)
        sarah = login(client, "sarah.connor")
        answer = client.get("/regions/NA/now", headers=sarah)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["waiting"], body["live_assignments"]) == (1, 0)
        assert body["oldest_waiting_since"] is not None
        depths = {q["queue"]: q["messages"] for q in body["queues"]}
        # The decision went to events.inbound by the fast path; nothing consumes it here.
        assert depths == {"events.outbound": 0, "events.outbound.dlq": 0,
                          "events.inbound": 1, "events.inbound.dlq": 0,
                          "ack.queue": 0, "ack.queue.dlq": 1}
        assert client.get("/regions/EU/now", headers=sarah).status_code == 403
        assert client.get("/regions/NA/now", headers=john).status_code == 403
