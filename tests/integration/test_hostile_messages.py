"""Hostile bodies on the three queues, between valid messages, with the real consumers
running: every valid message is processed, every bad one sits in its queue's `.dlq` with a
reason, and every process is still alive."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from common import resources
from common.adapters import broker
from common.adapters.presence import Presence
from common.messages import KINDS
from common.services import assignment
from tests import factories, helpers
from tests.processes import eventually, running

pytestmark = pytest.mark.slow

LIMIT = 16_384  # MESSAGE_MAX_BYTES of the consumers under hypothesis: small bodies, fast runs
QUEUES = (broker.OUTBOUND, broker.INBOUND, broker.ACK)
REQUIRED = {broker.OUTBOUND: ["eventId", "region", "ruleType", "location", "severity",
                              "deviceId", "cameraId", "frameReference", "createdAt"],
            broker.INBOUND: ["assignmentId", "eventId", "decision"],
            broker.ACK: ["assignmentId", "eventId", "decision"]}


class Valid:
    """Fresh valid messages for each queue, and whether each was processed."""

    def __init__(self, settings, conn):
        self.settings, self.conn = settings, conn
        self.presence = Presence(resources.redis_client(settings), settings)
        (operator,) = factories.add_operators(conn, 1, region="EU")
        factories.make_available(conn, self.presence, [operator])

    def decided(self) -> dict:
        """A decided assignment (source event, outbox row): its decision message."""
        e = factories.event("EU")
        helpers.insert_source(self.settings, [e])
        assignment.receive(self.conn, self.presence, self.settings, [e])
        assignment_id = helpers.live_assignment(self.conn, e.event_id)["assignment_id"]
        helpers.decide(self.settings, self.conn, assignment_id)
        return {"assignmentId": assignment_id, "eventId": str(e.event_id),
                "decision": "approved"}

    def make(self, queue: str) -> dict:
        return factories.message(factories.event()) if queue == broker.OUTBOUND \
            else self.decided()

    def processed(self, queue: str, message: dict) -> bool:
        if queue == broker.OUTBOUND:
            return bool(self.conn.execute("SELECT 1 FROM dedup_events WHERE event_id = %s",
                                          [message["eventId"]]).fetchone())
        if queue == broker.INBOUND:
            return helpers.source_event(self.settings, message["eventId"])["state"] == "Viewed"
        return helpers.outbox_row(self.conn, message["assignmentId"])["status"] == "finished"


def wrong_type():
    return st.one_of(st.lists(st.integers(), max_size=3), st.booleans(),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def hostile(draw, queue: str, template: dict) -> bytes:
    """One body its consumer must dead-letter."""
    valid = json.dumps(template).encode()
    kind = draw(st.sampled_from(["bytes", "truncated", "deep", "huge", "wrong", "nul", "big"]))
    if kind == "bytes":
        body = draw(st.binary(min_size=1, max_size=300))
        return body if not body.strip().startswith(b"{") else b"\xff" + body
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "deep":
        depth = draw(st.integers(1_100, LIMIT // 6))
        return draw(st.sampled_from([b"[" * depth, b'{"a":' * depth, b'{"eventId":' + b"[" * depth]))
    if kind == "huge":
        digits = draw(st.integers(4_400, 6_000))
        field = draw(st.sampled_from(REQUIRED[queue]))
        return valid[:-1] + b', "' + field.encode() + b'": ' + b"9" * digits + b"}"
    changed = dict(template)
    field = draw(st.sampled_from(REQUIRED[queue]))
    if kind == "wrong":
        changed[field] = draw(wrong_type())
    elif kind == "nul":
        changed[draw(st.sampled_from(["eventId", "decision"] if queue != broker.OUTBOUND
                                     else ["location", "ruleType", "deviceId"]))] = "a\u0000b"
    else:
        changed["padding"] = "x" * draw(st.integers(LIMIT, LIMIT + 3_000))
    return json.dumps(changed).encode()


def dead_letters(settings, queue: str, expected: int) -> list[tuple[bytes, dict]]:
    dlq = broker.dlq_name(settings.name(queue))
    dead: list = []

    def more():
        dead.extend(helpers.drain(settings, dlq))
        return len(dead) >= expected

    eventually(more, message=f"{expected} dead letters on {dlq} (have {len(dead)})")
    return dead


def send_and_check(settings, valid: Valid, procs, batches: dict[str, list[bytes]]) -> None:
    sent = {}
    for queue in QUEUES:
        good = [valid.make(queue) for _ in range(3)]
        bad = batches[queue]
        middle = len(bad) // 2
        bodies = [good[0], *bad[:middle], good[1], *bad[middle:], good[2]]
        helpers.publish_raw(settings, queue, bodies)
        sent[queue] = good
    for queue in QUEUES:
        for message in sent[queue]:
            eventually(lambda q=queue, m=message: valid.processed(q, m),
                       message=f"valid message on {queue} processed")
        dead = dead_letters(settings, queue, len(batches[queue]))
        assert Counter(body for body, _ in dead) == Counter(batches[queue])
        for _, headers in dead:
            assert headers["x-death-reason"] and headers["x-death-kind"] in KINDS
            assert headers["x-original-queue"] == settings.name(queue)
    assert all(proc.poll() is None for proc in procs), "a consumer died"


def test_hostile_bodies_between_valid_messages_are_contained(settings, conn):
    valid = Valid(settings, conn)
    templates = {q: valid.make(q) for q in QUEUES}
    with running(settings, "assignment", "inbound", "ack", MESSAGE_MAX_BYTES=LIMIT) as procs:

        @examples(max_examples=12, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.fixed_dictionaries({q: st.lists(hostile(q, templates[q]), min_size=1,
                                                  max_size=8) for q in QUEUES}))
        def check(batches):
            send_and_check(settings, valid, procs, batches)

        check()


def test_the_bodies_that_crashed_make_up_are_dead_lettered_on_every_queue(settings, conn):
    valid = Valid(settings, conn)
    nested = b"[" * 100_000
    huge = b'{"assignmentId": ' + b"9" * 5_000 + b"}"
    deep_within_limit = b'{"eventId": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    oversized = json.dumps({"eventId": str(uuid.uuid4()), "pad": "x" * 70_000}).encode()
    bad = [nested, huge, deep_within_limit, oversized]
    with running(settings, "assignment", "inbound", "ack") as procs:
        send_and_check(settings, valid, procs, {q: bad for q in QUEUES})
    for queue in QUEUES:
        assert helpers.drain(settings, settings.name(queue)) == []


def test_a_body_over_the_limit_is_dead_lettered_unread_with_its_size(settings, conn):
    valid = Valid(settings, conn)
    body = json.dumps({**valid.make(broker.OUTBOUND), "pad": "x" * 70_000}).encode()
    with running(settings, "assignment") as [proc]:
        helpers.publish_raw(settings, broker.OUTBOUND, [body])
        [(dead, headers)] = dead_letters(settings, broker.OUTBOUND, 1)
        assert proc.poll() is None
    assert dead == body and headers["x-death-kind"] == "too_large"
    assert str(len(body)) in headers["x-death-reason"]
    assert conn.execute("SELECT count(*) AS n FROM rejected_events").fetchone()["n"] == 0
