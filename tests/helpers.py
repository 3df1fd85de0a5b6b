"""Test helpers for the review loop and releases: sessions, decisions, source events, broker.

Engine fixtures (events, synthetic operators, presence) live in tests/factories.py; the
long-running processes are started with tests/processes.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Sequence

import pika
from pika.exceptions import NackError

from common.adapters import broker
from common.adapters.presence import Presence
from common.messages import OutboundEvent
from common.resources import redis_client, relay_connection
from common.services import decisions
from common.settings import Settings


def add_session(conn, user_id: int, live: bool = True) -> None:
    """A login session row in PostgreSQL, alive for an hour or expired a minute ago."""
    expires = "now() + interval '1 hour'" if live else "now() - interval '1 minute'"
    conn.execute(
        f"INSERT INTO sessions (token_hash, user_id, expires_at) "
        f"VALUES (%s, %s, {expires})",
        [os.urandom(32), user_id],
    )


def decide(settings: Settings, conn, assignment_id: int, status: str = "approved",
           reason: str | None = None, note: str | None = None) -> dict:
    """The decision service, acting as the operator who holds the assignment."""
    holder = conn.execute("SELECT user_id FROM assignments WHERE assignment_id = %s",
                          [assignment_id]).fetchone()["user_id"]
    presence = Presence(redis_client(settings), settings)
    return decisions.decide(conn, presence, settings, assignment_id,
                            decisions.get_user(conn, holder), status, reason, note)


def live_assignment(conn, event_id) -> dict | None:
    return conn.execute(
        "SELECT * FROM assignments WHERE event_id = %s AND status = 'pending' AND NOT deleted",
        [event_id],
    ).fetchone()


def assignments_of(conn, event_id) -> list[dict]:
    return conn.execute(
        "SELECT * FROM assignments WHERE event_id = %s ORDER BY assignment_id", [event_id]
    ).fetchall()


def history(conn, event_id) -> list[tuple]:
    """(user_id, previous_state, new_state, reason) of every change of an event, in order."""
    rows = conn.execute(
        "SELECT user_id, previous_state, new_state, reason FROM assignment_history "
        "WHERE event_id = %s ORDER BY id",
        [event_id],
    ).fetchall()
    return [(r["user_id"], r["previous_state"], r["new_state"], r["reason"]) for r in rows]


def insert_source(settings: Settings, events: Sequence[OutboundEvent]) -> None:
    """The events in relay_service.events, as the producer inserted them (not dispatched)."""
    with relay_connection(settings) as conn, conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (event_id, region, rule_type, location, severity, device_id,"
            " camera_id, frame_reference, created_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            [(e.event_id, e.region, e.rule_type, e.location, e.severity, e.device_id,
              e.camera_id, e.frame_reference, e.created_at) for e in events],
        )


def source_event(settings: Settings, event_id) -> dict:
    with relay_connection(settings) as conn:
        return conn.execute("SELECT * FROM events WHERE event_id = %s", [event_id]).fetchone()


def outbox_row(conn, assignment_id: int) -> dict:
    return conn.execute("SELECT * FROM outbox_assignments WHERE assignment_id = %s",
                        [assignment_id]).fetchone()


# ---- RabbitMQ ---------------------------------------------------------------------------

NACK_RETRIES = 10


def publish_raw(settings: Settings, base: str, bodies: Sequence[bytes | dict],
                queue: str | None = None, headers: dict | None = None,
                id_prefix: str | None = None) -> None:
    """Put bodies (bytes, or dicts as JSON) on a namespaced queue, as any producer could:
    the work queue of `base`, or `queue` (a full name, such as its `.dlq`). With
    `id_prefix`, each message gets its own message id starting with it."""
    connection = broker.connect(settings, "test-producer")
    try:
        channel = connection.channel()
        broker.declare_queues(channel, settings, [base])
        channel.confirm_delivery()
        for body in bodies:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            properties = pika.BasicProperties(delivery_mode=2, headers=headers, message_id=(
                f"{id_prefix}{time.time_ns()}" if id_prefix else None))
            # A nack means the broker did not take it (a quorum queue may refuse for a moment
            # on a loaded machine, seen in CI): a producer publishes it again.
            for attempt in range(NACK_RETRIES):
                try:
                    channel.basic_publish("", queue or settings.name(base), data, properties,
                                          mandatory=True)
                    break
                except NackError:
                    if attempt == NACK_RETRIES - 1:
                        raise
                    time.sleep(0.2)
    finally:
        connection.close()


def depth(settings: Settings, queue: str) -> int:
    """Messages ready on `queue` (a full name)."""
    connection = broker.connect(settings, "test-depth")
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def drain(settings: Settings, queue: str) -> list[tuple[bytes, dict]]:
    """Take every message now on `queue` (a full name): (body, headers) each."""
    connection = broker.connect(settings, "test-drain")
    taken = []
    try:
        channel = connection.channel()
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((body, properties.headers or {}))
    finally:
        connection.close()


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True,
                          text=True, timeout=60).stdout


def refuse_publishes(queue: str, policy: str) -> None:
    """A max-length 0, reject-publish policy on one queue: the broker nacks every publish."""
    _rabbitmqctl("set_policy", "--apply-to", "queues", policy, f"^{re.escape(queue)}$",
                 '{"max-length":0,"overflow":"reject-publish"}')


def clear_policy(policy: str) -> None:
    _rabbitmqctl("clear_policy", policy)


def queue_policy(queue: str) -> str:
    """The policy the broker applies to `queue` now ('' when none)."""
    for line in _rabbitmqctl("list_queues", "name", "policy", "--no-table-headers").splitlines():
        name, _, policy = line.partition("\t")
        if name == queue:
            return policy.strip()
    return ""


def connection_pids(name_prefix: str) -> list[str]:
    """The broker's pids of the AMQP connections whose client-provided name starts with
    `name_prefix`."""
    listed = _rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers")
    ours = f'{{"connection_name","{name_prefix}'
    return [line.split("\t")[0] for line in listed.splitlines() if ours in line]


def close_connections_named(name: str) -> int:
    """Close, as the broker would, every AMQP connection whose client-provided name is
    `name`; returns how many."""
    pids = connection_pids(name + '"')  # the name ends at the quote
    for pid in pids:
        _rabbitmqctl("close_connection", pid, "test: closed while idle")
    return len(pids)
