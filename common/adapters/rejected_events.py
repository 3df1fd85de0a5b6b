"""assignment_service.rejected_events: which event messages the assignment consumer
dead-lettered, and why. Written by the assignment consumer, read by relay-poll."""

from __future__ import annotations

import hashlib
from uuid import UUID

import psycopg

RECORD = """
    INSERT INTO rejected_events (event_id, body_sha256, reason, kind)
    VALUES (%s, %s, %s, %s)
    ON CONFLICT (event_id, body_sha256)
    DO UPDATE SET reason = EXCLUDED.reason, kind = EXCLUDED.kind, at = now()
"""
FIND = "SELECT event_id, body_sha256, reason, kind FROM rejected_events WHERE event_id = ANY(%s)"


def digest(body: bytes) -> bytes:
    """The SHA-256 of a message body, as recorded and compared."""
    return hashlib.sha256(bytes(body)).digest()


def record(conn: psycopg.Connection, event_id: UUID, body: bytes, reason: str, kind: str) -> None:
    """Note that the message `body` naming `event_id` was dead-lettered (autocommit)."""
    conn.execute(RECORD, (event_id, digest(body), reason, kind))


def find(conn: psycopg.Connection, event_ids: list) -> dict:
    """{(event_id, body digest): (reason, kind)} of the rejections of these events."""
    with conn.transaction():
        rows = conn.execute(FIND, (event_ids,)).fetchall()
    found = {}
    for row in rows:
        values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
        event_id, body_sha256, reason, kind = values
        found[(event_id, bytes(body_sha256))] = (reason, kind)
    return found
