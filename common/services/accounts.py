"""Accounts managed from the command line: add, disable, enable, move, set a password.

Called by `python -m common.accounts` (and `make password`). Each use case owns its
transaction; where an operator's live work must go (disabled, moved to another region,
password changed), it is released after the change committed, with Redis presence
corrected first, so the routing that follows never hands the work straight back.
"""

from __future__ import annotations

import logging

import psycopg

from common.adapters.presence import Presence
from common.domain.decisions import OPERATOR, SUPERVISOR
from common.domain.routing import USER_REGIONS
from common.services import passwords, releases
from common.services.errors import Conflict, NotFound, ServiceError
from common.settings import Settings

log = logging.getLogger(__name__)

ROLES = (OPERATOR, SUPERVISOR)
ACTOR = "accounts"
_COLUMNS = "id, username, name, role, region, available, disabled"


class Refused(ServiceError):
    """The input cannot make an account (bad name, role, region or password)."""

    status_code = 422


def check_password(settings: Settings, password: str) -> None:
    """Refuse a password production must not accept: too short, or the demo's."""
    if not password:
        raise Refused("the password is empty")
    if settings.APP_ENV == "production":
        if password == passwords.DEMO_PASSWORD:
            raise Refused("the demo password is not allowed in production")
        if len(password) < settings.PASSWORD_MIN_LENGTH:
            raise Refused(f"the password is shorter than {settings.PASSWORD_MIN_LENGTH} "
                          "characters (PASSWORD_MIN_LENGTH)")


def list_accounts(conn: psycopg.Connection) -> list[dict]:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM users ORDER BY id")
        return cur.fetchall()


def add(conn: psycopg.Connection, settings: Settings, username: str, name: str,
        role: str, region: str, password: str) -> dict:
    """A new account with the next free id; an operator also gets a load row."""
    _check_fields(role, region)
    check_password(settings, password)
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            cur.execute(
                f"INSERT INTO users (id, username, name, role, region, password_hash, "
                f"password_changed_at) SELECT coalesce(max(id), 0) + 1, %s, %s, %s, %s, %s, "
                f"now() FROM users RETURNING {_COLUMNS}",
                [username, name, role, region, passwords.hash_password(password)])
            user = cur.fetchone()
            if role == OPERATOR:
                cur.execute("INSERT INTO operator_load (user_id) VALUES (%s)", [user["id"]])
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"account {username} already exists") from None
    except psycopg.errors.CheckViolation:
        raise Refused(f"bad username {username!r}: lower-case letters, digits, '.', '_' "
                      "and '-', at most 100") from None
    log.info("account %s (user %s) added: %s, %s", username, user["id"], role, region)
    return user


def _check_fields(role: str, region: str) -> None:
    if role not in ROLES:
        raise Refused(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if region not in USER_REGIONS:
        raise Refused(f"region must be one of {', '.join(USER_REGIONS)}, not {region!r}")


def set_password(conn: psycopg.Connection, presence: Presence, settings: Settings,
                 username: str, password: str) -> dict:
    """A new password; every session of the account ends (log in again with it)."""
    check_password(settings, password)
    user = _update(conn, username, "password_hash = %s, password_changed_at = now()",
                   [passwords.hash_password(password)], end_sessions=True)
    _after_sessions_ended(conn, presence, settings, user, "password_changed")
    log.info("account %s (user %s): password changed", username, user["id"])
    return user


def disable(conn: psycopg.Connection, presence: Presence, settings: Settings,
            username: str) -> dict:
    """No more logins; its sessions end and an operator's live work is released."""
    user = _update(conn, username, "disabled = true", [], end_sessions=True)
    _after_sessions_ended(conn, presence, settings, user, "disabled")
    log.info("account %s (user %s) disabled", username, user["id"])
    return user


def enable(conn: psycopg.Connection, username: str) -> dict:
    user = _update(conn, username, "disabled = false", [], end_sessions=False)
    log.info("account %s (user %s) enabled", username, user["id"])
    return user


def move(conn: psycopg.Connection, presence: Presence, settings: Settings,
         username: str, region: str) -> dict:
    """Another region. An operator keeps their load row and availability; their live
    work (routed for the old region) is released to be routed again."""
    _check_fields(OPERATOR, region)
    user = _update(conn, username, "region = %s", [region], end_sessions=False)
    if user["role"] == OPERATOR:
        if user["available"] and presence.session_alive(user["id"]):
            presence.set_available(user["id"], region)
        releases.release_user(conn, presence, settings, user["id"], reason="moved_region",
                              actor=ACTOR)
    log.info("account %s (user %s) moved to %s", username, user["id"], region)
    return user


def _update(conn: psycopg.Connection, username: str, assignment: str, values: list,
            end_sessions: bool) -> dict:
    """One UPDATE of the account (and, if asked, the end of its sessions and
    availability), in one transaction."""
    with conn.transaction(), conn.cursor() as cur:
        extra = ", available = false" if end_sessions else ""
        cur.execute(f"UPDATE users SET {assignment}{extra}, updated_at = now() "
                    f"WHERE username = %s RETURNING {_COLUMNS}", [*values, username])
        user = cur.fetchone()
        if user is None:
            raise NotFound(f"no account named {username!r}")
        if end_sessions:
            cur.execute("UPDATE sessions SET ended_at = now() "
                        "WHERE user_id = %s AND ended_at IS NULL", [user["id"]])
    return user


def _after_sessions_ended(conn: psycopg.Connection, presence: Presence,
                          settings: Settings, user: dict, reason: str) -> None:
    """Redis follows PostgreSQL: no presence; then an operator's work is released."""
    presence.set_unavailable(user["id"])
    presence.end_session(user["id"])
    if user["role"] == OPERATOR:
        releases.release_user(conn, presence, settings, user["id"], reason=reason,
                              actor=ACTOR)
