"""The HTTP API of DESIGN.md, every answer code, against the real servers.

TestClient re-raises any server error, so a test that would get a 500 fails loudly.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from common.adapters import broker
from common.api.app import create_app
from common.resources import redis_client
from common.settings import Settings
from tests import servers
from tests.integration.waiting import (
    add_waiting_events,
    execute,
    history,
    live,
    load_row,
    query,
    waiting,
)

JOHN, MIKE = 1, 6


def api(settings) -> TestClient:
    return TestClient(create_app(settings))


@pytest.fixture
def client(settings):
    with api(settings) as test_client:
        yield test_client


def settled(client) -> None:
    """Wait for the API's backfill and fast-path threads to handle what was asked so far."""
    resources = client.app.state.resources
    assert resources.backfill.settle() and resources.fast_path.settle()


def login(client, username="john.smith", password="pass123") -> dict:
    answer = client.post("/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    settled(client)
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def assignments(client, headers, user_id=JOHN) -> list[dict]:
    settled(client)
    answer = client.get(f"/users/{user_id}/assignments", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def decide(client, headers, assignment_id, status="approved", **extra):
    answer = client.put(f"/assignments/{assignment_id}", headers=headers,
                        json={"status": status, **extra})
    settled(client)
    return answer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- health and docs ---------------------------------------------------------------------

def test_health_answers_200_when_all_three_servers_answer(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json()["servers"] == {
        "PostgreSQL relay_service": "ok", "PostgreSQL assignment_service": "ok",
        "Redis": "ok", "RabbitMQ": "ok"}


def test_health_answers_503_naming_redis_when_redis_does_not_answer(settings):
    with api(settings.model_copy(update={"REDIS_PORT": closed_port()})) as down:
        answer = down.get("/health")
    assert answer.status_code == 503
    assert "Redis" in answer.json()["detail"]
    assert "PostgreSQL" not in answer.json()["detail"]


def test_openapi_documents_every_endpoint(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/auth/login", "/auth/logout", "/auth/heartbeat",
            "/users/{user_id}/active", "/users/{user_id}/assignments",
            "/assignments/{assignment_id}"} <= set(paths)


# -- login -------------------------------------------------------------------------------

def test_login_answers_the_token_and_the_user(client):
    answer = client.post("/auth/login", json={"username": "john.smith", "password": "pass123"})
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["token"]) >= 40
    assert body["user"] == {"id": 1, "username": "john.smith", "name": "John Smith",
                            "role": "operator", "region": "US", "max_assignments": 50}


@pytest.mark.parametrize(("username", "password"),
                         [("john.smith", "wrong"), ("nobody", "pass123")])
def test_a_wrong_username_or_password_is_401(client, username, password):
    answer = client.post("/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 401
    assert answer.json() == {"detail": "wrong username or password"}


def test_repeated_failed_logins_are_429_with_retry_after(settings):
    with api(settings.model_copy(update={"LOGIN_MAX_FAILURES": 3})) as client:
        codes = [client.post("/auth/login", json={"username": "john.smith",
                                                   "password": "guess"}).status_code
                 for _ in range(3)]
        locked = client.post("/auth/login",
                             json={"username": "john.smith", "password": "pass123"})
    assert codes == [401, 401, 401]
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) >= 1
    assert "too many failed logins" in locked.json()["detail"]


@pytest.mark.parametrize("body", [
    {}, {"username": "john.smith"}, {"username": 5, "password": "pass123"},
    {"username": "john.smith", "password": None}, {"username": "", "password": "x"},
    {"username": "john\u0000smith", "password": "pass123"},
    {"username": "john.smith", "password": "pass123", "extra": 1},
    {"username": "x" * 101, "password": "pass123"}, [1, 2], "text", 7,
])
def test_a_bad_login_body_is_422_with_a_json_detail(client, body):
    answer = client.post("/auth/login", json=body)
    assert answer.status_code == 422
    assert "detail" in answer.json()


@pytest.mark.parametrize("raw", [b"{", b"not json", b"", b"\xff\xfe",
                                 b'{"username": "\\ud800", "password": "x"}'])
def test_malformed_json_is_422_not_500(client, raw):
    answer = client.post("/auth/login", content=raw,
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert "detail" in answer.json()


# -- tokens ------------------------------------------------------------------------------

ENDPOINTS = [
    ("post", "/auth/logout"), ("post", "/auth/heartbeat"), ("post", "/users/1/active"),
    ("delete", "/users/1/active"), ("get", "/users/1/assignments"),
    ("put", "/assignments/1"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_but_health_and_login_needs_a_token(client, method, path):
    answer = client.request(method, path, json={"status": "approved"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", [
    "Bearer forged", "Bearer " + "A" * 43, "Basic am9objpwYXNzMTIz", "Bearer", "Bearer " + "x" * 5000,
])
def test_a_forged_or_malformed_token_is_401(client, authorization):
    login(client)
    answer = client.get("/users/1/assignments", headers={"Authorization": authorization})
    assert answer.status_code == 401


def test_an_expired_token_is_401(client, settings):
    headers = login(client)
    execute(settings, "UPDATE sessions SET expires_at = now() - interval '1 second'")
    assert client.get("/users/1/assignments", headers=headers).status_code == 401
    assert client.post("/auth/heartbeat", headers=headers).status_code == 401


def test_a_logged_out_token_is_401(client):
    headers = login(client)
    assert client.post("/auth/logout", headers=headers).status_code == 204
    assert client.get("/users/1/assignments", headers=headers).status_code == 401
    assert client.post("/auth/logout", headers=headers).status_code == 401


def test_an_operator_acting_for_someone_else_is_403(client):
    headers = login(client)
    assert client.get("/users/6/assignments", headers=headers).status_code == 403
    assert client.post("/users/6/active", headers=headers).status_code == 403
    assert client.delete("/users/6/active", headers=headers).status_code == 403


def test_a_supervisor_acts_within_their_region_only(client):
    headers = login(client, "emma.wilson")
    assert client.get("/users/6/assignments", headers=headers).status_code == 200
    assert client.delete("/users/6/active", headers=headers).status_code == 200
    assert client.get("/users/1/assignments", headers=headers).status_code == 403


@pytest.mark.parametrize("path", ["/users/999/assignments", "/users/999/active"])
def test_an_unknown_user_is_404(client, path):
    headers = login(client, "sarah.connor")
    method = "get" if path.endswith("assignments") else "post"
    answer = client.request(method, path, headers=headers)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "user 999 not found"}


@pytest.mark.parametrize("user_id", ["abc", "1.5", "0", "-1", "99999999999999999999"])
def test_a_user_id_that_is_not_a_valid_integer_is_422(client, user_id):
    headers = login(client)
    assert client.get(f"/users/{user_id}/assignments", headers=headers).status_code == 422


def test_a_supervisor_cannot_be_made_available(client):
    headers = login(client, "sarah.connor")
    assert client.post("/users/5/active", headers=headers).status_code == 409


# -- work, availability and decisions ----------------------------------------------------

def test_login_assigns_waiting_events_listed_most_severe_then_oldest(client, settings):
    add_waiting_events(settings, 2, region="NA", severity=2)
    add_waiting_events(settings, 1, region="NA", severity=5)
    add_waiting_events(settings, 1, region="EU", severity=5)
    listed = assignments(client, login(client))
    assert [a["severity"] for a in listed] == [5, 2, 2]
    assert listed[1]["created_at"] <= listed[2]["created_at"]
    assert {a["region"] for a in listed} == {"NA"}
    assert {"event_id", "rule_type", "location", "device_id", "camera_id",
            "frame_reference", "status"} <= set(listed[0])


def test_delete_active_stops_new_work_but_keeps_current_work(client, settings):
    add_waiting_events(settings, 2, region="NA")
    headers = login(client)
    answer = client.delete("/users/1/active", headers=headers)
    assert answer.status_code == 200 and answer.json()["available"] is False
    add_waiting_events(settings, 3, region="NA")
    assert client.post("/auth/heartbeat", headers=headers).status_code == 200
    assert len(assignments(client, headers)) == 2
    assert waiting(settings) == 3


def test_post_active_makes_available_again_and_backfills(client, settings):
    headers = login(client)
    client.delete("/users/1/active", headers=headers)
    add_waiting_events(settings, 3, region="NA")
    answer = client.post("/users/1/active", headers=headers)
    assert answer.status_code == 200 and answer.json()["available"] is True
    assert len(assignments(client, headers)) == 3


def test_a_decision_answers_the_updated_assignment_and_writes_history(client, settings):
    add_waiting_events(settings, 1, region="NA")
    headers = login(client)
    [work] = assignments(client, headers)
    answer = decide(client, headers, work["assignment_id"], "rejected",
                    reason="false_alarm", note="a cat")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["decision_reason"], body["decision_note"],
            body["decided_by"]) == ("rejected", "false_alarm", "a cat", JOHN)
    assert history(settings, work["assignment_id"]) == [
        (None, "pending", "assigned", "router", None),
        ("pending", "rejected", "false_alarm", "john.smith", JOHN),
    ]
    assert load_row(settings, JOHN) == 0
    assert assignments(client, headers) == []


def test_completed_is_accepted_as_approved_and_relayed_by_the_fast_path(client, settings):
    add_waiting_events(settings, 1, region="NA")
    headers = login(client)
    [work] = assignments(client, headers)
    answer = decide(client, headers, work["assignment_id"], "completed")
    assert answer.status_code == 200 and answer.json()["status"] == "approved"
    [outbox] = query(settings, "SELECT status, published_at FROM outbox_assignments "
                     "WHERE assignment_id = %s", [work["assignment_id"]])
    assert outbox["status"] == "completed" and outbox["published_at"] is not None
    assert _messages_on(settings, broker.INBOUND) == 1


def _messages_on(settings, base: str) -> int:
    connection = broker.connect(settings, "test-count")
    try:
        declared = connection.channel().queue_declare(settings.name(base), passive=True)
        return declared.method.message_count
    finally:
        connection.close()


def test_a_decision_frees_capacity_and_backfills_under_the_cap(settings):
    settings = settings.model_copy(update={"MAX_ASSIGNMENTS": 2})
    add_waiting_events(settings, 3, region="NA")
    with api(settings) as client:
        headers = login(client)
        first = assignments(client, headers)[0]
        assert decide(client, headers, first["assignment_id"]).status_code == 200
        assert len(assignments(client, headers)) == 2
    assert waiting(settings) == 0
    assert live(settings, JOHN) == 2 and load_row(settings, JOHN) == 2


@pytest.mark.parametrize(("first", "second"), [("approved", "approved"),
                                               ("approved", "rejected"),
                                               ("rejected", "completed")])
def test_deciding_twice_is_409(client, settings, first, second):
    add_waiting_events(settings, 1, region="NA")
    headers = login(client)
    [work] = assignments(client, headers)
    assert decide(client, headers, work["assignment_id"], first).status_code == 200
    answer = decide(client, headers, work["assignment_id"], second)
    assert answer.status_code == 409
    assert "already" in answer.json()["detail"]
    assert len(history(settings, work["assignment_id"])) == 2


def test_deciding_released_work_is_409(client, settings):
    add_waiting_events(settings, 1, region="NA")
    headers = login(client)
    [work] = assignments(client, headers)
    supervisor = login(client, "sarah.connor")
    assert client.post("/auth/logout", headers=headers).status_code == 204
    answer = decide(client, supervisor, work["assignment_id"])
    assert answer.status_code == 409
    assert "released" in answer.json()["detail"]
    assert history(settings, work["assignment_id"])[-1][1:3] == ("released", "logout")


def test_deciding_someone_elses_work_is_403(client, settings):
    add_waiting_events(settings, 1, region="EU")
    mike = login(client, "mike.ross")
    [work] = assignments(client, mike, MIKE)
    john = login(client)
    us_supervisor = login(client, "sarah.connor")
    assert decide(client, john, work["assignment_id"]).status_code == 403
    assert decide(client, us_supervisor, work["assignment_id"]).status_code == 403
    assert live(settings, MIKE) == 1


def test_a_supervisor_decides_work_of_their_region(client, settings):
    add_waiting_events(settings, 1, region="NA")
    [work] = assignments(client, login(client))
    answer = decide(client, login(client, "james.wilson"), work["assignment_id"])
    assert answer.status_code == 200 and answer.json()["decided_by"] == 10
    assert history(settings, work["assignment_id"])[-1][3:] == ("james.wilson", 10)


def test_deciding_an_unknown_assignment_is_404(client):
    answer = decide(client, login(client), 424242)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "assignment 424242 not found"}


@pytest.mark.parametrize("body", [
    {"status": "finished"}, {"status": "APPROVED"}, {}, {"status": 1},
    {"status": "approved", "reason": 5}, {"status": "approved", "note": "a\u0000b"},
    {"status": "approved", "reason": "x" * 501}, ["approved"],
])
def test_a_bad_decision_body_is_422(client, settings, body):
    add_waiting_events(settings, 1, region="NA")
    headers = login(client)
    [work] = assignments(client, headers)
    answer = client.put(f"/assignments/{work['assignment_id']}", headers=headers, json=body)
    assert answer.status_code == 422
    assert live(settings, JOHN) == 1


@pytest.mark.parametrize("assignment_id", ["abc", "0", "1e3", "9223372036854775808"])
def test_an_assignment_id_that_is_not_a_valid_integer_is_422(client, assignment_id):
    assert decide(client, login(client), assignment_id).status_code == 422


# -- presence after a Redis loss, servers down -------------------------------------------

def test_heartbeat_restores_presence_after_a_redis_flush_without_a_new_login(settings):
    settings = settings.model_copy(update={"MAX_ASSIGNMENTS": 2})
    add_waiting_events(settings, 2, region="NA")
    redis = redis_client(settings)
    with api(settings) as client:
        headers = login(client)
        servers.delete_namespace_keys(settings)
        add_waiting_events(settings, 2, region="NA")
        assert client.post("/auth/heartbeat", headers=headers).status_code == 200
        settled(client)
        assert redis.hget(settings.name("active_users"), JOHN) == "US"
        assert live(settings, JOHN) == 2 and waiting(settings) == 2
        first = assignments(client, headers)[0]
        assert decide(client, headers, first["assignment_id"]).status_code == 200
    assert live(settings, JOHN) == 2 and waiting(settings) == 1
    redis.close()


def test_login_is_503_naming_redis_when_redis_is_down(settings):
    with api(settings.model_copy(update={"REDIS_PORT": closed_port()})) as client:
        answer = client.post("/auth/login",
                             json={"username": "john.smith", "password": "pass123"})
    assert answer.status_code == 503
    assert answer.json()["server"] == "Redis"
    assert answer.json()["detail"].startswith("Redis is unavailable")


def test_a_request_is_503_naming_postgresql_when_postgresql_is_down(base_settings):
    down = Settings(**{**base_settings.model_dump(), "POSTGRES_PORT": closed_port()})
    with api(down) as client:
        answer = client.post("/auth/login",
                             json={"username": "john.smith", "password": "pass123"})
        health = client.get("/health")
    assert answer.status_code == 503 and answer.json()["server"] == "PostgreSQL"
    assert health.status_code == 503 and "PostgreSQL" in health.json()["detail"]



def test_two_simultaneous_decisions_on_one_assignment_make_exactly_one(client, settings):
    add_waiting_events(settings, 1, region="NA")
    operator = login(client)
    supervisor = login(client, "sarah.connor")
    [work] = assignments(client, operator)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(
            lambda args: decide(client, *args),
            [(operator, work["assignment_id"], "approved"),
             (supervisor, work["assignment_id"], "rejected")]))
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert query(settings, "SELECT count(*) AS n FROM outbox_assignments")[0]["n"] == 1
    assert load_row(settings, JOHN) == 0
