"""Sessions and the request path under races and failures, on the real servers.

Logout of one of several sessions, Redis failing after a logout's commit, the hard session
age, cleanup-inactive-users racing a login (real threads, the interleaving forced with a
row lock), and a pool too small for the requests in flight.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from common.adapters.presence import Presence
from common.api.app import create_app
from common.resources import assignment_connection, redis_client
from common.services import assignment, releases, sessions
from common.services.errors import Unauthorized
from tests.integration.test_api import closed_port
from tests.integration.waiting import add_waiting_events, execute, live, query, waiting
from tests.processes import eventually

JOHN = 1


def login(conn, presence, settings, username="john.smith"):
    token, _ = sessions.login(conn, presence, settings, username, "pass123")
    return token


def available(settings, user_id=JOHN) -> bool:
    return query(settings, "SELECT available FROM users WHERE id = %s", [user_id])[0][
        "available"]


def released_for(settings, reason: str) -> int:
    return query(settings, "SELECT count(*) AS n FROM assignment_history "
                 "WHERE new_state = 'released' AND reason = %s", [reason])[0]["n"]


def test_leaving_one_tab_keeps_the_work_while_another_session_lives(conn, presence, settings):
    add_waiting_events(settings, 2, region="NA")
    first = login(conn, presence, settings)
    second = login(conn, presence, settings)
    assert live(settings, JOHN) == 2

    sessions.logout(conn, presence, settings, first)
    assert live(settings, JOHN) == 2 and available(settings)
    assert presence.active_users() == {JOHN: "US"} and presence.session_alive(JOHN)
    assert sessions.authenticate(conn, presence, settings, second)["id"] == JOHN

    sessions.logout(conn, presence, settings, second)
    assert live(settings, JOHN) == 0 and waiting(settings) == 2
    assert not available(settings) and presence.active_users() == {}
    assert released_for(settings, "logout") == 2


def test_a_redis_failure_after_logout_loses_no_release_and_routes_nothing_to_them(
        conn, presence, settings):
    add_waiting_events(settings, 2, region="NA")
    token = login(conn, presence, settings)
    redis_down = Presence(redis_client(settings.model_copy(
        update={"REDIS_PORT": closed_port()})), settings)

    sessions.logout(conn, redis_down, settings, token)

    assert live(settings, JOHN) == 0 and waiting(settings) == 2
    assert not available(settings)
    assert presence.active_users() == {JOHN: "US"}  # Redis never heard of the logout
    assert assignment.route_waiting(conn, presence, settings) == 0
    assert waiting(settings) == 2
    assert presence.active_users() == {}  # the refused pick corrected Redis


def test_a_heartbeat_never_extends_a_session_past_session_max_hours(conn, presence, settings):
    settings = settings.model_copy(update={"SESSION_MAX_HOURS": 0.01})  # 36 s
    token = login(conn, presence, settings)
    sessions.heartbeat(conn, presence, settings, token)
    [row] = query(settings, "SELECT extract(epoch FROM expires_at - created_at) AS s "
                  "FROM sessions")
    assert row["s"] <= 36.0 + 1e-6

    execute(settings, "UPDATE sessions SET created_at = now() - interval '37 seconds'")
    with pytest.raises(Unauthorized):
        sessions.heartbeat(conn, presence, settings, token)


def test_a_session_past_its_maximum_is_401_at_the_api(settings):
    with TestClient(create_app(settings)) as client:
        answer = client.post("/auth/login", json={"username": "john.smith",
                                                   "password": "pass123"})
        headers = {"Authorization": f"Bearer {answer.json()['token']}"}
        assert client.post("/auth/heartbeat", headers=headers).status_code == 200
        execute(settings, "UPDATE sessions SET created_at = now() - interval '13 hours'")
        assert client.post("/auth/heartbeat", headers=headers).status_code == 401
        assert client.get("/users/1/assignments", headers=headers).status_code == 401


def _lock_waiters(settings) -> int:
    return query(settings, "SELECT count(*) AS n FROM pg_stat_activity "
                 "WHERE datname = current_database() AND wait_event_type = 'Lock'")[0]["n"]


@pytest.mark.parametrize("first", ["cleanup", "login"])
def test_cleanup_racing_a_login_never_leaves_a_logged_in_operator_unavailable(
        conn, presence, settings, first):
    add_waiting_events(settings, 2, region="NA")
    login(conn, presence, settings)
    assert live(settings, JOHN) == 2
    execute(settings, "UPDATE sessions SET expires_at = now() - interval '1 second'")
    results = {}

    def run(name):
        with assignment_connection(settings, autocommit=True) as own:
            if name == "cleanup":
                results[name] = releases.cleanup_inactive_users(own, presence, settings)
            else:
                results[name] = login(own, presence, settings)

    second = "login" if first == "cleanup" else "cleanup"
    with assignment_connection(settings) as holder:
        holder.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", [JOHN])
        threads = {}
        for n, name in enumerate((first, second), start=1):
            threads[name] = threading.Thread(target=run, args=(name,))
            threads[name].start()
            eventually(lambda n=n: _lock_waiters(settings) >= n, timeout=60,
                       message=f"{name} waiting for the users row")
        holder.rollback()
    for thread in threads.values():
        thread.join(60)
    assert set(results) == {"cleanup", "login"}

    # Whatever the order: the operator who just logged in is available and present,
    # in PostgreSQL and in Redis, and has their work (kept, or released and routed back).
    assert sessions.authenticate(conn, presence, settings, results["login"])["id"] == JOHN
    assert available(settings)
    assert presence.active_users() == {JOHN: "US"} and presence.session_alive(JOHN)
    assert live(settings, JOHN) == 2 and waiting(settings) == 0
    assert released_for(settings, "inactive") == (2 if first == "cleanup" else 0)


def test_requests_beyond_the_pool_get_a_busy_503_of_their_own(settings):
    settings = settings.model_copy(update={"API_DB_POOL_SIZE": 1,
                                           "API_DB_POOL_TIMEOUT": 0.5})
    with TestClient(create_app(settings)) as client:
        tokens = [client.post("/auth/login", json={"username": name, "password": "pass123"})
                  .json()["token"] for name in ("john.smith", "sarah.connor")]
        john, sarah = ({"Authorization": f"Bearer {t}"} for t in tokens)
        with assignment_connection(settings) as holder, ThreadPoolExecutor(1) as pool:
            holder.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", [JOHN])
            # John's logout takes the only connection and waits for his users row.
            logout = pool.submit(client.post, "/auth/logout", headers=john)
            eventually(lambda: _lock_waiters(settings) >= 1, message="logout waiting")
            started = time.monotonic()
            busy = client.get("/users/5/assignments", headers=sarah)
            waited = time.monotonic() - started
            holder.rollback()
            assert logout.result(60).status_code == 204
    assert busy.status_code == 503, busy.text
    assert busy.json()["detail"].startswith("the API is busy: no database connection free")
    assert busy.headers["Retry-After"] == "1"
    print(f"busy answer after {waited:.2f} s (API_DB_POOL_TIMEOUT 0.5)")
