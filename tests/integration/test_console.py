"""The console (console/app.py) under Streamlit's AppTest, against a real API process.

The API runs under uvicorn with the test's own settings (databases, namespace); the
console finds it through API_URL, as `make up` wires them. Results are checked in
PostgreSQL, where the API wrote them.
"""

from __future__ import annotations

import csv
import io
import time

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from common.adapters import broker
from common.adapters.supervision_db import HISTORY_COLUMNS
from console.api_client import error_for
from console.formatting import plain
from tests.integration.supervision_helpers import NINA, add_second_us_operator
from tests.integration.waiting import add_waiting_events, execute, query
from tests.processes import eventually, free_port, serving_api

JOHN = 1


@pytest.fixture
def api_url(settings, monkeypatch, tmp_path):
    with open(tmp_path / "api.log", "wb") as logs, serving_api(settings, logs) as url:
        monkeypatch.setenv("API_URL", url)
        yield url


def console() -> AppTest:
    return AppTest.from_file("../../console/app.py", default_timeout=30).run()


def log_in(at: AppTest, username: str, password: str = "pass123") -> AppTest:
    text_input(at, "Username").input(username)
    text_input(at, "Password").input(password)
    return button(at, "Log in").click().run()


def text_input(at: AppTest, label: str):
    [found] = [t for t in at.text_input if t.label == label]
    return found


def buttons(at: AppTest, label: str) -> list:
    return [b for b in at.button if b.label == label]


def button(at: AppTest, label: str):
    return buttons(at, label)[0]


def on_login_form(at: AppTest) -> bool:
    return ([t.label for t in at.text_input] == ["Username", "Password"]
            and [b.label for b in at.button] == ["Log in"])


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def assignment(settings, assignment_id: int) -> dict:
    [row] = query(settings, "SELECT * FROM assignments WHERE assignment_id = %s",
                  [assignment_id])
    return row


def live_ids(settings) -> list[int]:
    rows = query(settings, "SELECT a.assignment_id FROM assignments a JOIN events e "
                 "USING (event_id) WHERE a.user_id = %s AND a.status = 'pending' "
                 "AND NOT a.deleted ORDER BY e.severity DESC, a.created_at", [JOHN])
    return [r["assignment_id"] for r in rows]


@pytest.fixture
def john(settings, api_url) -> AppTest:
    """John Smith logged in to the console, with a severity 2 and a severity 5 event."""
    add_waiting_events(settings, 1, region="NA", severity=2)
    add_waiting_events(settings, 1, region="NA", severity=5)
    at = log_in(console(), "john.smith")
    assert not at.exception
    # The API answers the login before its backfill thread has assigned the waiting work.
    eventually(lambda: len(live_ids(settings)) == 2, message="the login's backfill")
    at.run()
    return at


def test_the_login_form_has_the_labels_browser_tests_rely_on(api_url):
    assert on_login_form(console())


def test_an_operator_sees_their_queue_most_severe_first_with_a_decision_each(john, settings):
    [first] = query(settings, "SELECT camera_id, device_id FROM events WHERE severity = 5")
    assert texts(john.title) == ["John Smith"]
    assert texts(john.subheader) == ["Your queue (2)"]
    badges = [m for m in texts(john.markdown) if "Severity" in m]
    assert [b.split("[")[1].split("]")[0] for b in badges] == ["Severity 5", "Severity 2"]
    assert "Motion detection at lobby" in badges[0] and "NA" in badges[0]
    item_captions = [c for c in texts(john.caption) if c.startswith("Camera ")]
    assert item_captions[0].startswith(
        f"Camera {plain(first['camera_id'])} · device {plain(first['device_id'])} · frame ")
    assert len(buttons(john, "Approve")) == 2 and len(buttons(john, "Reject")) == 2
    assert john.toggle(key="available_toggle").value is True
    assert buttons(john, "Log out")


def test_approve_approves_that_assignment_in_the_database(john, settings):
    first, second = live_ids(settings)
    button(john, "Approve").click().run()
    assert not john.exception
    decided = assignment(settings, first)
    assert (decided["status"], decided["decided_by"]) == ("approved", JOHN)
    assert assignment(settings, second)["status"] == "pending"
    assert texts(john.success) == ["Approved: Motion detection at lobby."]
    assert texts(john.subheader) == ["Your queue (1)"]


def test_reject_records_the_reason_chosen_beside_it(john, settings):
    first, _ = live_ids(settings)
    john.radio(key=f"reason-{first}").set_value("duplicate").run()
    john.button(key=f"reject-{first}").click().run()
    rejected = assignment(settings, first)
    assert (rejected["status"], rejected["decision_reason"]) == ("rejected", "duplicate")
    assert texts(john.success) == ["Rejected: Motion detection at lobby."]
    assert texts(john.subheader) == ["Your queue (1)"]


def test_reject_as_other_needs_a_note_and_keeps_it(john, settings):
    first, _ = live_ids(settings)
    john.button(key=f"reject-{first}").click().run()
    assert texts(john.warning) == ["Choose a reason to reject: Motion detection at lobby."]
    john.radio(key=f"reason-{first}").set_value("other").run()
    john.button(key=f"reject-{first}").click().run()
    assert assignment(settings, first)["status"] == "pending"
    john.text_input(key=f"note-{first}").input("a cat again")
    john.button(key=f"reject-{first}").click().run()
    rejected = assignment(settings, first)
    assert (rejected["status"], rejected["decision_reason"], rejected["decision_note"]) == (
        "rejected", "other", "a cat again")


def test_release_gives_the_item_back_and_it_leaves_the_list(john, settings):
    first, second = live_ids(settings)
    john.button(key=f"release-{first}").click().run()
    released = assignment(settings, first)
    assert (released["deleted"], released["release_reason"]) == (True, "released_by_operator")
    assert texts(john.info)[0] == "Released to the waiting queue: Motion detection at lobby."


def test_the_queue_shows_the_cap_and_time_left(john, settings):
    captions = texts(john.caption)
    assert "2 / 50 open assignments" in captions
    assert any(c.startswith("Assigned ") and c.endswith(" left") and "14 min" in c
               for c in captions)


def test_event_fields_are_text_never_markdown_or_html(settings, api_url):
    add_waiting_events(settings, 1, region="NA", severity=3)
    execute(settings, "UPDATE events SET location = %s, camera_id = %s",
            ["**lobby** <b>x</b> :red[y]", "[cam](http://evil.example)"])
    at = log_in(console(), "john.smith")
    # The API answers the login before its backfill thread has assigned the waiting work.
    eventually(lambda: live_ids(settings), message="the login's backfill")
    at.run()
    [line] = [m for m in texts(at.markdown) if "Severity" in m]
    assert "\\*\\*lobby\\*\\* \\<b\\>x\\</b\\> \\:red\\[y\\]" in line
    [caption] = [c for c in texts(at.caption) if c.startswith("Camera ")]
    assert caption.startswith("Camera \\[cam\\]\\(http\\:")


def test_approving_work_a_supervisor_already_decided_says_so(john, settings, api_url):
    first, _ = live_ids(settings)
    token = httpx.post(f"{api_url}/auth/login", json={"username": "james.wilson",
                                                      "password": "pass123"}).json()["token"]
    answer = httpx.put(f"{api_url}/assignments/{first}", json={"status": "rejected"},
                       headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    john.button(key=f"approve-{first}").click().run()
    assert not john.exception
    [warning] = texts(john.warning)
    assert warning.startswith("Already decided or released")
    assert assignment(settings, first)["status"] == "rejected"
    assert texts(john.subheader) == ["Your queue (1)"]


def test_switching_availability_off_and_on_reaches_the_api(john, settings):
    john.toggle(key="available_toggle").set_value(False).run()
    assert query(settings, "SELECT available FROM users WHERE id = 1")[0]["available"] is False
    assert john.toggle(key="available_toggle").value is False
    john.toggle(key="available_toggle").set_value(True).run()
    assert query(settings, "SELECT available FROM users WHERE id = 1")[0]["available"] is True


def test_log_out_ends_the_session_and_returns_to_the_login_form(john, settings):
    button(john, "Log out").click().run()
    assert on_login_form(john)
    assert "You are logged out" in texts(john.info)[0]
    assert query(settings, "SELECT count(*) AS n FROM sessions WHERE user_id = 1 "
                 "AND ended_at IS NULL")[0]["n"] == 0
    assert live_ids(settings) == []


def test_a_wrong_password_shows_an_error_and_stays_on_the_login_form(api_url):
    at = log_in(console(), "john.smith", "not-his-password")
    assert texts(at.error) == ["Wrong username or password."]
    assert on_login_form(at)
    assert "token" not in at.session_state


def test_a_session_that_ended_elsewhere_returns_to_the_login_form(john, settings):
    query(settings, "UPDATE sessions SET ended_at = now() WHERE user_id = 1 RETURNING 1")
    john.run()
    assert on_login_form(john)
    assert texts(john.warning) == ["Your session has ended. Please log in again."]


def test_the_heartbeat_refreshes_the_session_once_it_is_due(john, settings):
    def last_seen():
        return query(settings, "SELECT last_seen_at FROM sessions WHERE user_id = 1")[0][
            "last_seen_at"]

    before = last_seen()
    john.session_state["last_heartbeat"] = time.monotonic() - 3600
    john.run()
    assert last_seen() > before
    assert john.session_state["last_heartbeat"] > time.monotonic() - 3600


def test_a_supervisor_sees_the_overview_of_their_region(settings, api_url):
    add_waiting_events(settings, 3, region="NA", severity=4)
    add_waiting_events(settings, 2, region="EU", severity=5)
    at = log_in(console(), "sarah.connor")
    assert not at.exception
    assert texts(at.subheader) == ["Region NA"]
    operators = at.dataframe[0].value
    assert operators.to_dict("records") == [{
        "Name": "John Smith", "Username": "john.smith", "Load": "0 / 50", "Logged in": "no",
        "Available": "no", "Last activity": "never"}]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Waiting events"] == "3" and metrics["Open assignments"] == "0"
    assert buttons(at, "Log out") and not buttons(at, "Approve")
    queues = at.dataframe[1].value
    assert queues.to_dict("records") == [
        {"Queue": name, "Messages": "0", "Dead letters": "0"}
        for name in ("events.outbound", "events.inbound", "ack.queue")]


def test_the_supervisor_sees_dead_letters_arrive(settings, api_url):
    at = log_in(console(), "sarah.connor")
    with broker.connect(settings, "test-console") as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        broker.declare_queues(channel, settings)
        for _ in range(2):
            channel.basic_publish("", broker.dlq_name(settings.name(broker.OUTBOUND)),
                                  b"{}", mandatory=True)

    def dead_letters() -> str:
        at.run()
        return at.dataframe[1].value.set_index("Queue").loc["events.outbound",
                                                             "Dead letters"]

    # The API reads the queues at most every METRICS_CACHE_SECONDS: a generous bound.
    eventually(lambda: dead_letters() == "2", interval=1,
               message="the dead letters on the page")


def test_an_availability_switched_elsewhere_shows_at_the_next_refresh(john, settings,
                                                                     api_url):
    assert john.toggle(key="available_toggle").value is True
    token = httpx.post(f"{api_url}/auth/login", json={"username": "james.wilson",
                                                      "password": "pass123"}).json()["token"]
    answer = httpx.delete(f"{api_url}/users/1/active",
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["available"] is False
    john.session_state["last_heartbeat"] = time.monotonic()   # no heartbeat due
    john.run()
    assert john.toggle(key="available_toggle").value is False
    assert any(c.startswith("No new events come to you") for c in texts(john.caption))


def test_an_unchanged_queue_is_not_sent_again(john, settings):
    client = john.session_state["api_client"]
    before = client.not_modified
    john.run()
    assert client.not_modified >= before + 2          # the queue and the availability
    assert texts(john.subheader) == ["Your queue (2)"]
    button(john, "Approve").click().run()
    assert texts(john.subheader) == ["Your queue (1)"]


def test_an_api_that_does_not_answer_is_named_on_the_login_form(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("API_URL", url)
    at = log_in(console(), "john.smith")
    [error] = texts(at.error)
    assert error.startswith(f"The API at {url} is not answering")
    assert on_login_form(at) and not at.exception


def test_a_503_names_the_server_that_is_down():
    error = error_for(503, {"detail": "Redis is unavailable: refused", "server": "Redis"})
    assert error.message.startswith("Redis is down")


def test_a_supervisor_moves_one_item_and_releases_another(settings, api_url):
    add_second_us_operator(settings)
    add_waiting_events(settings, 2, region="NA", severity=3)
    john = log_in(console(), "john.smith")
    assert texts(john.subheader) == ["Your queue (2)"]
    log_in(console(), "nina.park")
    first, second = live_ids(settings)
    at = log_in(console(), "sarah.connor")
    assert not at.exception
    assert at.radio(key=f"move-to-{first}").options == ["Nina Park"]
    at.radio(key=f"move-to-{first}").set_value(NINA).run()
    at.button(key=f"move-{first}").click().run()
    assert (assignment(settings, first)["release_reason"]) == "moved"
    assert query(settings, "SELECT user_id FROM assignments WHERE status = 'pending' AND "
                 "NOT deleted AND event_id = %s", [assignment(settings, first)["event_id"]]
                 )[0]["user_id"] == NINA
    assert any(t.startswith("Moved to user 11") for t in texts(at.success))
    at.button(key=f"release-{second}").click().run()
    assert assignment(settings, second)["release_reason"] == "released_by_supervisor"



def test_an_api_down_is_named_the_queue_kept_and_it_recovers(john, settings, monkeypatch,
                                                            api_url):
    monkeypatch.setenv("API_URL", f"http://127.0.0.1:{free_port()}")
    john.run()
    assert not john.exception
    [warning] = [w for w in texts(john.warning) if w.startswith("Your queue: ")]
    assert "is not answering" in warning and warning.endswith("Showing what was last seen.")
    assert texts(john.subheader) == ["Your queue (2)"]
    monkeypatch.setenv("API_URL", api_url)
    john.run()
    assert not [w for w in texts(john.warning) if w.startswith("Your queue: ")]
    assert texts(john.subheader) == ["Your queue (2)"]


# ---- the audit trail page --------------------------------------------------------------

def audit_script():
    """The Audit trail page alone (AppTest cannot select a page that st.navigation built
    from a function); the session is a real login through the API."""
    from console import audit_page

    audit_page.render()


def audit_page_as(api_url: str, username: str) -> AppTest:
    login = httpx.post(f"{api_url}/auth/login",
                       json={"username": username, "password": "pass123"}).json()
    at = AppTest.from_function(audit_script, default_timeout=30)
    at.session_state["token"] = login["token"]
    at.session_state["user"] = login["user"]
    at.session_state["last_heartbeat"] = time.monotonic()
    return at.run()


def api(api_url: str, method: str, path: str, token: str, **kwargs) -> dict:
    answer = httpx.request(method, f"{api_url}{path}", **kwargs,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.is_success, answer.text
    return answer.json()


@pytest.fixture
def story(settings, api_url) -> dict:
    """Two NA events: the first moved from John to Nina, the second approved by John; the
    second's history three hours old."""
    add_second_us_operator(settings)
    add_waiting_events(settings, 2, region="NA", severity=3)
    tokens = {}
    for username in ("john.smith", "nina.park", "sarah.connor"):
        tokens[username] = httpx.post(f"{api_url}/auth/login", json={
            "username": username, "password": "pass123"}).json()["token"]
        # John takes both before Nina logs in (the API's backfill thread assigns them).
        eventually(lambda: len(live_ids(settings)) == 2, message="the login's backfill")
    first, second = live_ids(settings)
    api(api_url, "POST", f"/assignments/{first}/move", tokens["sarah.connor"],
        json={"user_id": NINA})
    api(api_url, "PUT", f"/assignments/{second}", tokens["john.smith"],
        json={"status": "approved"})
    execute(settings, "UPDATE assignment_history SET at = at - interval '3 hours' "
            "WHERE assignment_id = %s", [second])
    [moved] = query(settings, "SELECT event_id FROM assignments WHERE assignment_id = %s",
                    [first])
    return {"moved_event": str(moved["event_id"])}


def history_ids(settings, where: str = "true", params=()) -> list[int]:
    rows = query(settings, f"SELECT id FROM assignment_history WHERE {where} "
                 "ORDER BY at DESC, id DESC", params)
    return [r["id"] for r in rows]


def test_the_audit_page_filters_by_time_and_operator(settings, api_url, story):
    at = audit_page_as(api_url, "sarah.connor")
    assert not at.exception
    assert texts(at.subheader) == ["Audit trail, region NA"]
    recent = history_ids(settings, "at > now() - interval '1 hour'")
    assert list(at.dataframe[0].value["id"]) == recent and len(recent) == 3
    at.selectbox(key="audit_range").set_value("Last 24 hours").run()
    assert list(at.dataframe[0].value["id"]) == history_ids(settings)
    assert len(history_ids(settings)) == 5
    at.selectbox(key="audit_user").set_value(JOHN).run()
    johns = history_ids(settings, "user_id = %s", [JOHN])
    assert list(at.dataframe[0].value["id"]) == johns and len(johns) == 4
    assert at.selectbox(key="audit_user").options == ["Everyone", "John Smith", "Nina Park"]


def test_the_audit_page_opens_one_events_whole_story(settings, api_url, story):
    at = audit_page_as(api_url, "sarah.connor")
    at.text_input(key="audit_event").input(story["moved_event"]).run()
    assert not at.exception
    assert any(m.startswith(f"**Story of event `{story['moved_event']}`** (3 change(s)")
               for m in texts(at.markdown))
    frame = at.dataframe[0].value
    assert list(frame["new_state"]) == ["pending", "moved", "pending"]
    assert list(frame["user_id"]) == [JOHN, JOHN, NINA]


def test_the_audit_csv_download_holds_the_rows_of_assignment_history(settings, api_url,
                                                                      story):
    at = audit_page_as(api_url, "sarah.connor")
    at.selectbox(key="audit_range").set_value("Last 24 hours").run()
    [download] = at.download_button
    assert download.label == "Download CSV"
    download.click().run()
    assert not at.exception
    table = list(csv.DictReader(io.StringIO(at.session_state["last-CSV"])))
    rows = query(settings, "SELECT * FROM assignment_history ORDER BY at DESC, id DESC")
    assert [int(r["id"]) for r in table] == [r["id"] for r in rows]
    assert [r["new_state"] for r in table] == [r["new_state"] for r in rows]
    assert [r["reason"] for r in table] == [r["reason"] or "" for r in rows]
    assert list(table[0]) == list(HISTORY_COLUMNS)


def test_the_audit_page_is_for_supervisors_only(settings, api_url):
    at = audit_page_as(api_url, "john.smith")
    assert texts(at.error) == ["This page is for supervisors."]
    assert not at.dataframe
