"""Shared by the supervision API, console and browser tests: a second NA operator."""

from __future__ import annotations

from tests.integration.waiting import execute

NINA = 11


def add_second_us_operator(settings, user_id: int = NINA, username: str = "nina.park",
                           name: str = "Nina Park") -> int:
    """An operator of US (serving NA) with John's password (pass123), not logged in."""
    execute(settings,
            "INSERT INTO users (id, username, name, role, region, password_hash) "
            "SELECT %s, %s, %s, 'operator', 'US', password_hash FROM users WHERE id = 1",
            [user_id, username, name])
    execute(settings, "INSERT INTO operator_load (user_id) VALUES (%s)", [user_id])
    return user_id
