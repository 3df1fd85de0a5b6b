"""Login, sessions, heartbeat, availability and logout.

Called by the HTTP API. Tokens are random; PostgreSQL keeps only their SHA-256 (table
`sessions`), so a session survives a Redis restart. Redis holds presence: the session key
(refreshed by login, heartbeat and `POST /users/{id}/active`) and `active_users`. Each
change commits in PostgreSQL first, then Redis follows, then waiting work is backfilled:
by the caller's `backfill` hook (the API's backfill thread), or inline without one.
A session lives SESSION_TTL past its last refresh, never past SESSION_MAX_HOURS after login.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

import psycopg
import redis

from common.adapters import assignment_db as db
from common.adapters.presence import Presence
from common.domain.decisions import OPERATOR
from common.resources import one_statement
from common.services import assignment, login_throttle, passwords, releases
from common.services.errors import Conflict, Unauthorized
from common.services.releases import BackfillHook
from common.settings import Settings

log = logging.getLogger(__name__)

_USER_COLUMNS = "u.id, u.username, u.name, u.role, u.region, u.available"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def login(conn: psycopg.Connection, presence: Presence, settings: Settings,
          username: str, password: str, address: str = "unknown",
          backfill: BackfillHook | None = None) -> tuple[str, dict]:
    """Check the password, start a session, make an operator available, backfill.

    `address` is the client's (the API's client_address). Returns (token, user). Raises
    TooManyAttempts while (username, address) has used up its attempts (the password is
    then not checked at all), Unauthorized for a wrong username or password or a
    disabled account.
    """
    login_throttle.count_attempt(presence.client, settings, username, address)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "SELECT id, username, name, role, region, password_hash FROM users "
            "WHERE username = %s AND NOT disabled", [username])
        row = cur.fetchone()
    if not passwords.matches(row["password_hash"] if row else None, password):
        log.warning("failed login for %r from %s", username, address)
        raise Unauthorized("wrong username or password")
    login_throttle.clear(presence.client, settings, username, address)
    token = secrets.token_urlsafe(32)
    user = _start_session(conn, settings, row, token)
    presence.touch_session(user["id"])
    if user["role"] == OPERATOR:
        presence.set_available(user["id"], user["region"])
        _backfill(conn, presence, settings, "login", user["id"], backfill)
    log.info("user %s (%s) logged in", user["id"], username)
    return token, user


def _start_session(conn: psycopg.Connection, settings: Settings, row: dict,
                   token: str) -> dict:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at) "
            "VALUES (%s, %s, now() + make_interval(secs => least(%s, %s)))",
            [token_hash(token), row["id"], settings.SESSION_TTL,
             settings.SESSION_MAX_HOURS * 3600])
        if row["role"] == OPERATOR:
            cur.execute("UPDATE users SET available = true, updated_at = now() "
                        "WHERE id = %s", [row["id"]])
    return {key: row[key] for key in ("id", "username", "name", "role", "region")}


def authenticate(conn: psycopg.Connection, presence: Presence, settings: Settings,
                 token: str) -> dict:
    """The user of a live session (not ended, not expired), from PostgreSQL alone: one
    statement, one round trip on an autocommit connection (every request asks this)."""
    with one_statement(conn) as cur:
        cur.execute(
            f"SELECT {_USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.token_hash = %s AND s.ended_at IS NULL AND s.expires_at > now() "
            "AND s.created_at + make_interval(secs => %s) > now() AND NOT u.disabled",
            [token_hash(token), settings.SESSION_MAX_HOURS * 3600])
        user = cur.fetchone()
    if user is None:
        raise Unauthorized("invalid or expired token")
    return user


def heartbeat(conn: psycopg.Connection, presence: Presence, settings: Settings,
              token: str, backfill: BackfillHook | None = None) -> dict:
    """Refresh the session (PostgreSQL and the Redis key) without changing availability.

    After a Redis loss this is what brings an available operator's presence back, with
    their live count from PostgreSQL, so nobody has to log in again.
    """
    user = _refresh_session(conn, settings, token)
    presence.touch_session(user["id"])
    if user["role"] == OPERATOR and user["available"]:
        _restore_presence(conn, presence, user)
        _backfill(conn, presence, settings, "heartbeat", user["id"], backfill)
    return user


def _refresh_session(conn: psycopg.Connection, settings: Settings, token: str) -> dict:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"""
            UPDATE sessions s
            SET expires_at = least(now() + make_interval(secs => %s),
                                   s.created_at + make_interval(secs => %s)),
                last_seen_at = now()
            FROM users u
            WHERE u.id = s.user_id AND s.token_hash = %s
              AND s.ended_at IS NULL AND s.expires_at > now()
              AND s.created_at + make_interval(secs => %s) > now()
            RETURNING {_USER_COLUMNS}
            """,
            [settings.SESSION_TTL, settings.SESSION_MAX_HOURS * 3600, token_hash(token),
             settings.SESSION_MAX_HOURS * 3600])
        user = cur.fetchone()
    if user is None:
        raise Unauthorized("invalid or expired token")
    return user


def _restore_presence(conn: psycopg.Connection, presence: Presence, user: dict) -> None:
    """Put an available operator back into active_users if Redis lost the entry."""
    if user["id"] in presence.active_users():
        return
    with conn.transaction(), conn.cursor() as cur:
        counts = db.live_counts(cur, [user["id"]])
    presence.set_counts(counts)
    presence.set_available(user["id"], user["region"])
    log.warning("presence of user %s restored by heartbeat (live %s)", user["id"],
                counts.get(user["id"]))


def set_available(conn: psycopg.Connection, presence: Presence, settings: Settings,
                  target: dict, on: bool, token: str | None = None,
                  backfill: BackfillHook | None = None) -> dict:
    """Switch an operator's availability for new work; current work stays theirs.

    `target` is the user being switched; `token` (the caller's own session, when they
    switch themself) is refreshed along with it.
    """
    if on and target["role"] != OPERATOR:
        raise Conflict(f"user {target['id']} is a {target['role']}; only operators "
                       "receive assignments")
    if token is not None:
        _refresh_session(conn, settings, token)
        presence.touch_session(target["id"])
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"UPDATE users u SET available = %s, updated_at = now() WHERE id = %s "
            f"RETURNING {_USER_COLUMNS}", [on, target["id"]])
        user = cur.fetchone()
    if on:
        presence.set_available(user["id"], user["region"])
        _backfill(conn, presence, settings, "available", user["id"], backfill)
    else:
        presence.set_unavailable(user["id"])
    log.info("user %s is now %s", user["id"], "available" if on else "unavailable")
    return user


def logout(conn: psycopg.Connection, presence: Presence, settings: Settings,
           token: str, backfill: BackfillHook | None = None) -> dict:
    """End this session; if it was an operator's last live session, they become
    unavailable and their pending work is released, in the same transaction.

    The operator's users row is locked before looking for another live session, so two
    tabs logging out at once release exactly once, and a login racing this either keeps
    its session or sees the release before it. Redis follows after the commit, best
    effort: if it fails, PostgreSQL's routing guard still refuses work to this operator.
    """
    with conn.transaction(), conn.cursor() as cur:
        user = _end_session(cur, token)
        last = _last_session(cur, user["id"])
        rows, counts = [], {}
        if last and user["role"] == OPERATOR:
            db.set_unavailable(cur, [user["id"]])
            rows, counts = releases.release_users_in(cur, [user["id"]], "logout",
                                                     user["username"], user["id"])
    for row in rows:
        log.info("released assignment %s (event %s, user %s): logout",
                 row["assignment_id"], row["event_id"], row["user_id"])
    log.info("user %s logged out (%s)", user["id"],
             f"last session, {len(rows)} assignment(s) released" if last
             else "another session stays live")
    if last:
        _forget_presence(presence, user["id"], counts)
    if counts:
        releases.after_release(conn, presence, settings, counts, backfill, user["id"])
    return user


def _end_session(cur, token: str) -> dict:
    cur.execute(
        f"""
        UPDATE sessions s SET ended_at = now()
        FROM users u
        WHERE u.id = s.user_id AND s.token_hash = %s AND s.ended_at IS NULL
          AND s.expires_at > now()
        RETURNING {_USER_COLUMNS}
        """, [token_hash(token)])
    user = cur.fetchone()
    if user is None:
        raise Unauthorized("invalid or expired token")
    return user


def _last_session(cur, user_id: int) -> bool:
    """Lock the users row, then (a later statement, a fresh snapshot) look for another
    live session of the same user."""
    db.lock_users(cur, [user_id])
    cur.execute("SELECT 1 FROM sessions WHERE user_id = %s AND ended_at IS NULL "
                "AND expires_at > now() LIMIT 1", [user_id])
    return cur.fetchone() is None


def _forget_presence(presence: Presence, user_id: int, counts: dict[int, int]) -> None:
    """After the commit: Redis drops the user's presence. Logged, never raised: the
    routing guard in PostgreSQL refuses them already, and corrects Redis when it does."""
    try:
        presence.end_session(user_id)
        if counts:
            presence.set_counts(counts)
    except redis.RedisError as error:
        log.warning("user %s logged out, but Redis presence not cleared (%r); PostgreSQL "
                    "refuses them work and the router prunes them", user_id, error)


def _backfill(conn: psycopg.Connection, presence: Presence, settings: Settings,
              why: str, user_id: int, hook: BackfillHook | None = None) -> None:
    """Assign waiting work now that capacity appeared: through `hook` if the caller has
    one, else inline. The change that caused it has committed; if a server fails here,
    the consumers' periodic sweep assigns it later."""
    if hook is not None:
        hook(why, user_id)
        return
    try:
        assigned = assignment.route_waiting(conn, presence, settings)
    except (psycopg.OperationalError, redis.RedisError) as error:
        log.warning("backfill after %s of user %s failed: %s", why, user_id, error)
        return
    if assigned:
        log.info("backfill after %s of user %s assigned %d event(s)", why, user_id, assigned)
