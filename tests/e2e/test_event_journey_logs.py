"""Logs you can follow: with LOG_LEVEL=DEBUG, `grep <event_id>` over the output of every
process shows the event's whole journey, in one format naming each process."""

from __future__ import annotations

import json

import httpx
import pytest

from common import resources
from common.adapters.presence import Presence
from tests import factories, helpers
from tests.processes import eventually, running, serving_api

pytestmark = pytest.mark.slow

JOURNEY = ("relayed", "stored", "waiting", "assigned", "decided", "Viewed", "finished")


def test_grep_for_an_event_id_shows_its_whole_journey(settings, tmp_path):
    debug = settings.model_copy(update={"LOG_LEVEL": "DEBUG"})
    conn = resources.assignment_connection(settings, autocommit=True)
    followed, other = factories.event("NA"), factories.event("NA")
    log_file = tmp_path / "processes.log"
    with log_file.open("wb") as logs, \
            running(debug, "relay", "assignment", "inbound", "ack", logs=logs), \
            serving_api(debug, logs) as url, httpx.Client(base_url=url) as http:
        login = http.post("/auth/login", json={"username": "john.smith", "password": "pass123"})
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        helpers.insert_source(settings, [followed, other])
        live = eventually(lambda: helpers.live_assignment(conn, followed.event_id),
                          message="the event assigned")
        assert http.put(f"/assignments/{live['assignment_id']}", headers=auth,
                        json={"status": "approved"}).status_code == 200
        eventually(lambda: helpers.outbox_row(conn, live["assignment_id"])["status"]
                   == "finished", message="the outbox row finished")
        eventually(lambda: "outbox row finished" in log_file.read_text(),
                   message="the ack consumer logged it")
    lines = log_file.read_text().splitlines()
    mine = [line for line in lines if str(followed.event_id) in line]
    text = "\n".join(mine)
    missing = [step for step in JOURNEY if step not in text]
    assert not missing, f"steps missing from the grep: {missing}\n{text}"
    processes = {line.split()[3] for line in mine}
    assert {"relay", "assignment", "api", "inbound", "ack"} <= processes, processes
    assert "pass123" not in log_file.read_text()
    assert login.json()["token"] not in log_file.read_text()
    # Every line about the event once it has an assignment names the assignment too.
    after = [line for line in mine if any(step in line for step in JOURNEY[3:])]
    assert all(str(live["assignment_id"]) in line for line in after), after


def test_json_lines_at_info_print_one_line_per_batch_not_per_event(settings, tmp_path):
    conn = resources.assignment_connection(settings, autocommit=True)
    presence = Presence(resources.redis_client(settings), settings)
    (operator,) = factories.add_operators(conn, 1, region="EU")
    factories.make_available(conn, presence, [operator])
    events = [factories.event("EU") for _ in range(40)]
    log_file = tmp_path / "json.log"
    with log_file.open("wb") as logs, running(settings, "relay", "assignment", logs=logs,
                                              LOG_FORMAT="json", LOG_LEVEL="INFO"):
        helpers.insert_source(settings, events)
        eventually(lambda: sum(factories.live_by_user(conn).values()) == 40,
                   message="40 events assigned")
    entries = [json.loads(line) for line in log_file.read_text().splitlines() if line]
    assert {e["process"] for e in entries} == {"relay", "assignment"}
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    about_events = [e for e in entries
                    if any(str(ev.event_id) in e["message"] for ev in events)]
    assert about_events == []
    assert len(entries) < 40, [e["message"] for e in entries]
