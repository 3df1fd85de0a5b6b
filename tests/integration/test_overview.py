"""GET /regions/{region}/overview: a region's operators and waiting work, for its
supervisors only, against the real servers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from common.api.app import create_app
from tests.integration.waiting import add_waiting_events


@pytest.fixture
def client(settings):
    # A cap of 2 leaves some of the region's events waiting after John logs in.
    capped = settings.model_copy(update={"MAX_ASSIGNMENTS": 2})
    with TestClient(create_app(capped)) as test_client:
        yield test_client


def login(client, username: str) -> dict:
    answer = client.post("/auth/login", json={"username": username, "password": "pass123"})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def overview(client, headers, region: str):
    return client.get(f"/regions/{region}/overview", headers=headers)


def counts(body: dict) -> dict[int, int]:
    return {row["severity"]: row["count"] for row in body["waiting"]}


def test_a_us_supervisor_sees_na_operators_and_what_waits_by_severity(client, settings):
    add_waiting_events(settings, 1, region="NA", severity=5)
    add_waiting_events(settings, 3, region="NA", severity=3)
    add_waiting_events(settings, 2, region="EU", severity=4)
    login(client, "john.smith")
    answer = overview(client, login(client, "sarah.connor"), "NA")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["region"] == "NA"
    assert body["operators"] == [{"id": 1, "username": "john.smith", "name": "John Smith",
                                  "available": True, "live": 2, "present": True}]
    assert counts(body) == {5: 0, 4: 0, 3: 2, 2: 0, 1: 0}
    assert [row["severity"] for row in body["waiting"]] == [5, 4, 3, 2, 1]
    assert body["waiting"][2]["oldest_waiting_since"] is not None
    assert body["waiting_total"] == 2


def test_operators_who_logged_out_or_never_came_are_not_present(client, settings):
    add_waiting_events(settings, 2, region="EU", severity=4)
    mike = login(client, "mike.ross")
    assert client.post("/auth/logout", headers=mike).status_code == 204
    body = overview(client, login(client, "emma.wilson"), "EU").json()
    assert {(o["username"], o["present"], o["live"]) for o in body["operators"]} == {
        ("mike.ross", False, 0), ("marie.dubois", False, 0)}
    assert counts(body)[4] == 2 and body["waiting_total"] == 2


def test_an_unavailable_operator_still_logged_in_is_present_but_not_available(client):
    john = login(client, "john.smith")
    assert client.delete("/users/1/active", headers=john).status_code == 200
    [operator] = overview(client, login(client, "james.wilson"), "NA").json()["operators"]
    assert (operator["available"], operator["present"]) == (False, True)


def test_an_operator_asking_for_the_overview_is_403(client):
    answer = overview(client, login(client, "john.smith"), "NA")
    assert answer.status_code == 403
    assert answer.json() == {"detail": "region NA is not yours to supervise"}


@pytest.mark.parametrize(("username", "region"), [("emma.wilson", "NA"),
                                                  ("sarah.connor", "EU"),
                                                  ("raj.patel", "LATAM")])
def test_a_supervisor_of_another_region_is_403(client, username, region):
    assert overview(client, login(client, username), region).status_code == 403


def test_the_overview_without_a_token_is_401(client):
    answer = client.get("/regions/NA/overview")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("region", ["US", "na", "MARS", "1"])
def test_an_unknown_region_is_422(client, region):
    answer = overview(client, login(client, "sarah.connor"), region)
    assert answer.status_code == 422
    assert "detail" in answer.json()
