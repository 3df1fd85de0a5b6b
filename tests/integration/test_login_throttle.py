"""Failed logins are limited per (username, client address), counted before the check."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from common.api.app import create_app
from common.resources import assignment_connection
from common.services import sessions
from common.services.errors import TooManyAttempts, Unauthorized

STRANGER, OWNER = "203.0.113.9", "198.51.100.7"


def _attempt(settings, presence, password: str, address: str) -> str:
    with assignment_connection(settings, autocommit=True) as conn:
        try:
            sessions.login(conn, presence, settings, "john.smith", password, address)
        except Unauthorized:
            return "checked and refused"
        except TooManyAttempts:
            return "throttled"
    return "logged in"


def test_parallel_wrong_guesses_never_check_more_passwords_than_the_limit(settings, presence):
    settings = settings.model_copy(update={"LOGIN_MAX_FAILURES": 3})
    start = threading.Barrier(12)

    def guess(i: int) -> str:
        start.wait()
        return _attempt(settings, presence, f"guess-{i}", STRANGER)

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(guess, range(12)))
    assert outcomes.count("checked and refused") == 3
    assert outcomes.count("throttled") == 9
    assert _attempt(settings, presence, "pass123", STRANGER) == "throttled"


def test_a_strangers_failures_do_not_lock_the_owner_out_from_elsewhere(settings, presence):
    settings = settings.model_copy(update={"LOGIN_MAX_FAILURES": 2})
    for _ in range(5):
        _attempt(settings, presence, "guess", STRANGER)
    assert _attempt(settings, presence, "guess", STRANGER) == "throttled"
    assert _attempt(settings, presence, "pass123", OWNER) == "logged in"


def test_the_lockout_ends_after_the_window(settings, presence):
    settings = settings.model_copy(update={"LOGIN_MAX_FAILURES": 1,
                                           "LOGIN_LOCKOUT_SECONDS": 5})
    _attempt(settings, presence, "guess", STRANGER)
    assert _attempt(settings, presence, "pass123", STRANGER) == "throttled"
    threading.Event().wait(6)
    assert _attempt(settings, presence, "pass123", STRANGER) == "logged in"


def _login(client, password: str, headers: dict) -> int:
    return client.post("/auth/login", json={"username": "john.smith", "password": password},
                       headers=headers).status_code


def test_the_api_believes_x_forwarded_for_only_from_the_console(settings):
    settings = settings.model_copy(update={"LOGIN_MAX_FAILURES": 2})
    console = {"X-Console-Secret": settings.CONSOLE_SECRET}
    with TestClient(create_app(settings)) as client:
        # The console vouches: the stranger's browser is locked, the owner's is not.
        for _ in range(2):
            assert _login(client, "guess", {**console, "X-Forwarded-For": STRANGER}) == 401
        assert _login(client, "pass123", {**console, "X-Forwarded-For": STRANGER}) == 429
        assert _login(client, "pass123", {**console, "X-Forwarded-For": OWNER}) == 200
        # Anybody else: a made-up address (or a wrong secret) counts against the peer.
        forged = {"X-Console-Secret": "not-the-secret"}
        for address in ("192.0.2.1", "192.0.2.2"):
            assert _login(client, "guess", {**forged, "X-Forwarded-For": address}) == 401
        assert _login(client, "pass123", {"X-Forwarded-For": "192.0.2.3"}) == 429
