"""The review loop on real servers: decision -> events.inbound -> relay_service Viewed ->
ack.queue -> outbox finished, with the inbound and ack consumers running as processes."""

from __future__ import annotations

import json
import uuid

import pytest

from common.adapters import broker
from common.adapters.presence import Presence
from common.api.fastpath import FastPath
from common.resources import assignment_connection, publisher, redis_client
from common.services import assignment, outbox
from tests import helpers
from tests.factories import add_operators, event, make_available
from tests.processes import eventually, running


@pytest.fixture
def pub(settings):
    with publisher(settings, "test-outbox") as p:
        p.ensure_open()  # declares the queues
        yield p


@pytest.fixture
def decide_new(settings, conn):
    """Make a decided assignment: source event, routed, decided. Returns (event, id)."""
    presence = Presence(redis_client(settings), settings)
    (operator,) = add_operators(conn, 1, region="EU")
    make_available(conn, presence, [operator])

    def make(status="approved", reason="looks fine", note="checked camera"):
        e = event("EU", severity=4)
        helpers.insert_source(settings, [e])
        assignment.receive(conn, presence, settings, [e])
        assignment_id = helpers.live_assignment(conn, e.event_id)["assignment_id"]
        helpers.decide(settings, conn, assignment_id, status, reason, note)
        return e, assignment_id

    return make


def completed(settings, conn, e, assignment_id) -> bool:
    source = helpers.source_event(settings, e.event_id)
    return source["state"] == "Viewed" and \
        helpers.outbox_row(conn, assignment_id)["status"] == "finished"


def wait_completed(settings, conn, e, assignment_id) -> None:
    eventually(lambda: completed(settings, conn, e, assignment_id),
               message=f"assignment {assignment_id} relayed and finished")


def test_a_decision_reaches_the_source_and_finishes_its_outbox_row_by_the_fast_path(
        settings, conn, pub, decide_new):
    e, assignment_id = decide_new("rejected", "false alarm", "a cat")
    with running(settings, "inbound", "ack"):
        assert outbox.publish_decided(conn, pub, settings, [assignment_id]) == 1
        wait_completed(settings, conn, e, assignment_id)

    source = helpers.source_event(settings, e.event_id)
    decided = helpers.assignments_of(conn, e.event_id)[0]
    assert (source["decision"], source["decision_reason"], source["decision_note"]) == \
        ("rejected", "false alarm", "a cat")
    assert (source["assignment_id"], source["decided_by"], source["decided_at"]) == \
        (assignment_id, decided["user_id"], decided["decided_at"])
    row = helpers.outbox_row(conn, assignment_id)
    assert row["attempts"] == 1 and row["published_at"] is not None
    assert row["finished_at"] is not None


def test_the_sweep_completes_a_decision_the_broker_refused_on_the_fast_path(
        settings, conn, pub, decide_new):
    first, first_id = decide_new()
    e, assignment_id = decide_new()
    queue = settings.name(broker.INBOUND)
    policy = f"refuse-{settings.NAMESPACE}"
    helpers.refuse_publishes(queue, policy)
    try:
        eventually(lambda: helpers.queue_policy(queue) == policy, message="policy applied")
        # A quorum queue refuses once it is over its limit: the first decision fills it.
        assert outbox.publish_decided(conn, pub, settings, [first_id]) == 1
        duplicate = broker.Message("probe", broker.encode(decision_message(conn, first_id)))
        eventually(lambda: pub.publish_batch(broker.INBOUND, [duplicate]) == set(),
                   message="the broker refusing publishes")

        assert outbox.publish_decided(conn, pub, settings, [assignment_id]) == 0
        row = helpers.outbox_row(conn, assignment_id)
        assert (row["published_at"], row["attempts"], row["status"]) == (None, 0, "completed")
    finally:
        helpers.clear_policy(policy)
    eventually(lambda: helpers.queue_policy(queue) == "", message="policy cleared")

    with running(settings, "inbound", "ack"):
        # The scheduled sweep, run until the broker takes messages again (a quorum queue
        # leaves its refusing state once its backlog is consumed).
        eventually(lambda: outbox.publish_decided(conn, pub, settings) == 1,
                   interval=0.5, message="the sweep relaying the refused decision")
        wait_completed(settings, conn, e, assignment_id)
        wait_completed(settings, conn, first, first_id)
    assert helpers.source_event(settings, e.event_id)["decision"] == "approved"
    assert helpers.outbox_row(conn, assignment_id)["attempts"] == 1


def test_the_sweep_does_not_resend_rows_published_a_moment_ago(settings, conn, pub, decide_new):
    _, assignment_id = decide_new()
    assert outbox.publish_decided(conn, pub, settings, [assignment_id]) == 1

    assert outbox.publish_decided(conn, pub, settings) == 0
    overdue = settings.model_copy(update={"OUTBOX_REPUBLISH_SECONDS": 0})
    assert outbox.publish_decided(conn, pub, overdue) == 1

    sent = helpers.drain(settings, settings.name(broker.INBOUND))
    assert [json.loads(body)["assignmentId"] for body, _ in sent] == [assignment_id] * 2
    assert helpers.outbox_row(conn, assignment_id)["attempts"] == 2


def test_a_row_claimed_by_one_path_is_not_sent_by_the_other(settings, conn, pub, decide_new):
    _, assignment_id = decide_new()
    with assignment_connection(settings) as other, other.transaction():
        other.execute("SELECT 1 FROM outbox_assignments WHERE assignment_id = %s FOR UPDATE",
                      [assignment_id])
        assert outbox.publish_decided(conn, pub, settings) == 0
        assert outbox.publish_decided(conn, pub, settings, [assignment_id]) == 0
    assert outbox.publish_decided(conn, pub, settings) == 1
    assert len(helpers.drain(settings, settings.name(broker.INBOUND))) == 1


def test_duplicate_inbound_and_ack_messages_change_nothing(settings, conn, decide_new):
    e, assignment_id = decide_new()
    message = decision_message(conn, assignment_id)
    with running(settings, "inbound", "ack"):
        helpers.publish_raw(settings, broker.INBOUND, [message, message])
        wait_completed(settings, conn, e, assignment_id)
        source = helpers.source_event(settings, e.event_id)
        finished_at = helpers.outbox_row(conn, assignment_id)["finished_at"]

        contrary = {**message, "decision": "rejected", "reason": "changed my mind"}
        helpers.publish_raw(settings, broker.INBOUND, [message, contrary])
        helpers.publish_raw(settings, broker.ACK, [message, message])
        later, later_id = decide_new()  # a sentinel behind the duplicates
        helpers.publish_raw(settings, broker.INBOUND, [decision_message(conn, later_id)])
        wait_completed(settings, conn, later, later_id)

    assert helpers.source_event(settings, e.event_id) == source
    assert helpers.outbox_row(conn, assignment_id)["finished_at"] == finished_at
    for base in (broker.INBOUND, broker.ACK):
        assert helpers.drain(settings, broker.dlq_name(settings.name(base))) == []


def test_malformed_inbound_and_ack_messages_are_dead_lettered_with_their_reason(
        settings, conn, decide_new):
    e, assignment_id = decide_new()
    unknown_event = {**decision_message(conn, assignment_id), "eventId": str(uuid.uuid4())}
    unknown_assignment = {**decision_message(conn, assignment_id), "assignmentId": 987654}
    with running(settings, "inbound", "ack") as processes:
        helpers.publish_raw(settings, broker.INBOUND,
                            [b"not json", {"assignmentId": "x"}, unknown_event])
        helpers.publish_raw(settings, broker.ACK, [b"\xff\xfe", unknown_assignment])
        helpers.publish_raw(settings, broker.INBOUND, [decision_message(conn, assignment_id)])
        wait_completed(settings, conn, e, assignment_id)
        inbound_dead = collect(settings, broker.INBOUND, 3)
        ack_dead = collect(settings, broker.ACK, 2)
        assert all(p.poll() is None for p in processes)

    assert sorted(reason_of(h) for _, h in inbound_dead) == [
        "assignmentId: Input should be a valid integer; eventId: Field required; "
        "decision: Field required",
        "invalid JSON: Expecting value at position 0",
        f"unknown event {unknown_event['eventId']} in relay_service",
    ]
    assert sorted(reason_of(h) for _, h in ack_dead) == [
        "invalid UTF-8 at byte 0", "unknown assignment 987654: no outbox row"]


def decision_message(conn, assignment_id: int) -> dict:
    row = conn.execute(
        "SELECT assignment_id, event_id, status AS decision, decision_reason, decision_note,"
        " decided_by, decided_at FROM assignments WHERE assignment_id = %s", [assignment_id]
    ).fetchone()
    return outbox.decision_message(row)


def collect(settings, base: str, count: int) -> list:
    """Wait until `count` dead letters of queue `base` arrived; return them."""
    taken: list = []
    dlq = broker.dlq_name(settings.name(base))
    eventually(lambda: _take(taken, settings, dlq) >= count,
               message=f"{count} dead letters on {dlq}")
    return taken


def _take(taken: list, settings, dlq: str) -> int:
    taken.extend(helpers.drain(settings, dlq))
    return len(taken)


def reason_of(headers: dict) -> str:
    reason = headers["x-death-reason"]
    return reason.decode() if isinstance(reason, bytes) else reason


def test_an_api_starting_relays_what_a_killed_one_committed_but_never_published(
        settings, conn, decide_new):
    # Committed, and its API process gone before the fast path published it.
    e, assignment_id = decide_new()
    assert helpers.outbox_row(conn, assignment_id)["published_at"] is None
    fast_path = FastPath(settings)
    fast_path.start()
    try:
        eventually(lambda: helpers.outbox_row(conn, assignment_id)["published_at"],
                   message="relayed by the next API process's start-up sweep")
    finally:
        fast_path.close()
    bodies = helpers.drain(settings, settings.name(broker.INBOUND))
    assert [json.loads(body)["assignmentId"] for body, _ in bodies] == [assignment_id]
    assert json.loads(bodies[0][0])["eventId"] == str(e.event_id)
