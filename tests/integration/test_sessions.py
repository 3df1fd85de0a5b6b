"""Sessions and availability against the real PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from common.services import sessions
from common.services.errors import Conflict, TooManyAttempts, Unauthorized
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

JOHN = 1


def login(conn, presence, settings, username="john.smith", password="pass123"):
    return sessions.login(conn, presence, settings, username, password)


def test_login_returns_a_token_of_which_only_the_hash_is_stored(conn, presence, settings):
    token, user = login(conn, presence, settings)
    assert user == {"id": 1, "username": "john.smith", "name": "John Smith",
                    "role": "operator", "region": "US"}
    stored = query(settings, "SELECT token_hash FROM sessions WHERE user_id = 1")
    assert [bytes(r["token_hash"]) for r in stored] == [sessions.token_hash(token)]
    assert token.encode() not in bytes(stored[0]["token_hash"])


def test_login_makes_an_operator_available_and_present(conn, presence, settings):
    login(conn, presence, settings)
    assert presence.active_users() == {JOHN: "US"}
    assert presence.session_alive(JOHN)
    assert query(settings, "SELECT available FROM users WHERE id = 1")[0]["available"]


def test_a_supervisor_logs_in_but_is_never_made_available(conn, presence, settings):
    _, user = login(conn, presence, settings, "sarah.connor")
    assert user["role"] == "supervisor"
    assert presence.active_users() == {}
    assert presence.session_alive(5)


def test_a_wrong_password_is_refused(conn, presence, settings):
    with pytest.raises(Unauthorized):
        login(conn, presence, settings, password="wrong")


def test_an_unknown_username_is_refused_like_a_wrong_password(conn, presence, settings):
    with pytest.raises(Unauthorized, match="wrong username or password"):
        login(conn, presence, settings, username="nobody")


def test_repeated_failures_lock_the_username_even_for_the_right_password(
        conn, presence, settings):
    settings = settings.model_copy(update={"LOGIN_MAX_FAILURES": 3})
    for _ in range(3):
        with pytest.raises(Unauthorized):
            login(conn, presence, settings, password="guess")
    with pytest.raises(TooManyAttempts) as refused:
        login(conn, presence, settings)
    assert 1 <= refused.value.retry_after <= settings.LOGIN_LOCKOUT_SECONDS


def test_a_lockout_of_one_username_leaves_the_others_alone(conn, presence, settings):
    settings = settings.model_copy(update={"LOGIN_MAX_FAILURES": 2})
    for _ in range(2):
        with pytest.raises(Unauthorized):
            login(conn, presence, settings, password="guess")
    _, user = login(conn, presence, settings, username="mike.ross")
    assert user["id"] == 6


def test_a_successful_login_clears_earlier_failures(conn, presence, settings):
    settings = settings.model_copy(update={"LOGIN_MAX_FAILURES": 2})
    with pytest.raises(Unauthorized):
        login(conn, presence, settings, password="guess")
    login(conn, presence, settings)
    with pytest.raises(Unauthorized):
        login(conn, presence, settings, password="guess")
    login(conn, presence, settings)


def test_authenticate_needs_only_postgresql_so_a_token_survives_a_redis_flush(
        conn, presence, settings):
    token, _ = login(conn, presence, settings)
    servers.delete_namespace_keys(settings)
    assert sessions.authenticate(conn, presence, settings, token)["id"] == JOHN


def test_a_forged_token_is_refused(conn, presence, settings):
    login(conn, presence, settings)
    with pytest.raises(Unauthorized):
        sessions.authenticate(conn, presence, settings, "forged-token")


def test_an_expired_session_is_refused(conn, presence, settings):
    token, _ = login(conn, presence, settings)
    execute(settings, "UPDATE sessions SET expires_at = now() - interval '1 second'")
    with pytest.raises(Unauthorized):
        sessions.authenticate(conn, presence, settings, token)
    with pytest.raises(Unauthorized):
        sessions.heartbeat(conn, presence, settings, token)


def test_login_assigns_the_waiting_events(conn, presence, settings):
    add_waiting_events(settings, 3, region="NA")
    login(conn, presence, settings)
    assert live(settings, JOHN) == 3
    assert load_row(settings, JOHN) == 3
    assert waiting(settings) == 0


def test_login_takes_no_events_of_another_region(conn, presence, settings):
    add_waiting_events(settings, 2, region="EU")
    login(conn, presence, settings)
    assert live(settings, JOHN) == 0
    assert waiting(settings) == 2


def test_heartbeat_restores_presence_after_a_redis_flush_and_the_cap_holds(
        conn, presence, settings):
    settings = settings.model_copy(update={"MAX_ASSIGNMENTS": 3})
    add_waiting_events(settings, 5, region="NA")
    token, _ = login(conn, presence, settings)
    servers.delete_namespace_keys(settings)
    add_waiting_events(settings, 2, region="NA")
    sessions.heartbeat(conn, presence, settings, token)
    assert presence.active_users() == {JOHN: "US"}
    assert presence.session_alive(JOHN)
    assert presence.counts()[JOHN] == 3
    assert live(settings, JOHN) == 3 and load_row(settings, JOHN) == 3
    assert waiting(settings) == 4


def test_heartbeat_does_not_make_an_unavailable_operator_available(conn, presence, settings):
    token, user = login(conn, presence, settings)
    sessions.set_available(conn, presence, settings, user, False)
    sessions.heartbeat(conn, presence, settings, token)
    assert presence.active_users() == {}
    assert presence.session_alive(JOHN)


def test_heartbeat_extends_the_session_in_postgresql(conn, presence, settings):
    token, _ = login(conn, presence, settings)
    execute(settings, "UPDATE sessions SET expires_at = now() + interval '2 seconds'")
    sessions.heartbeat(conn, presence, settings, token)
    left = query(settings, "SELECT expires_at - now() AS left FROM sessions")[0]["left"]
    assert left.total_seconds() > settings.SESSION_TTL - 60


def test_unavailable_stops_new_work_and_keeps_current_work(conn, presence, settings):
    add_waiting_events(settings, 2, region="NA")
    token, user = login(conn, presence, settings)
    sessions.set_available(conn, presence, settings, user, False)
    add_waiting_events(settings, 2, region="NA")
    sessions.heartbeat(conn, presence, settings, token)
    assert live(settings, JOHN) == 2
    assert waiting(settings) == 2


def test_available_again_backfills_the_waiting_work(conn, presence, settings):
    token, user = login(conn, presence, settings)
    sessions.set_available(conn, presence, settings, user, False)
    add_waiting_events(settings, 2, region="NA")
    sessions.set_available(conn, presence, settings, user, True, token)
    assert live(settings, JOHN) == 2


def test_a_supervisor_cannot_be_made_available(conn, presence, settings):
    _, user = login(conn, presence, settings, "sarah.connor")
    with pytest.raises(Conflict, match="only operators"):
        sessions.set_available(conn, presence, settings, user, True)


def test_logout_ends_the_session_and_releases_pending_work(conn, presence, settings):
    add_waiting_events(settings, 2, region="NA")
    token, _ = login(conn, presence, settings)
    assignment_ids = [r["assignment_id"] for r in query(settings, "SELECT assignment_id "
                                                        "FROM assignments")]
    sessions.logout(conn, presence, settings, token)
    with pytest.raises(Unauthorized):
        sessions.authenticate(conn, presence, settings, token)
    assert not presence.session_alive(JOHN)
    assert presence.active_users() == {}
    assert live(settings, JOHN) == 0 and load_row(settings, JOHN) == 0
    assert waiting(settings) == 2
    for assignment_id in assignment_ids:
        assert history(settings, assignment_id)[-1][2] == "logout"


def test_a_logged_out_token_cannot_log_out_again(conn, presence, settings):
    token, _ = login(conn, presence, settings)
    sessions.logout(conn, presence, settings, token)
    with pytest.raises(Unauthorized):
        sessions.logout(conn, presence, settings, token)
