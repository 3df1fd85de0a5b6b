"""`python -m consumers dlq|replay QUEUE`, and the length limit of the dead-letter queues."""

from __future__ import annotations

import subprocess
import sys
import tempfile

from common.adapters import broker
from consumers import dlq, dlq_policy
from tests import factories, helpers, servers
from tests.processes import ROOT, eventually, running


def command(settings, *args: str, **env) -> subprocess.CompletedProcess:
    environment = servers.settings_env(settings) | {"PYTHONPATH": str(ROOT)} | env
    return subprocess.run([sys.executable, "-m", "consumers", *args], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)


def dead_letter(settings, base: str, bodies: list[bytes], kind="invalid_fields",
                reason="severity: Input should be less than or equal to 5") -> None:
    """Put bodies on `<base>.dlq` with the headers the runner writes."""
    queue = settings.name(base)
    helpers.publish_raw(settings, base, bodies, queue=broker.dlq_name(queue), headers={
        "x-death-reason": reason, "x-death-kind": kind, "x-original-queue": queue},
        id_prefix="dlq-1-")


def broker_dead_letter(settings, body: bytes) -> None:
    """A message the broker itself dead-letters at the delivery limit (its `x-death`)."""
    helpers.publish_raw(settings, broker.OUTBOUND, [body])
    queue = settings.name(broker.OUTBOUND)
    connection = broker.connect(settings, "test-crashing-consumer")
    channel = connection.channel()
    for _ in range(settings.RABBITMQ_DELIVERY_LIMIT + 1):
        method, _, _ = eventually(lambda: (got := channel.basic_get(queue))[0] and got)
        channel.basic_nack(method.delivery_tag, requeue=True)
    connection.close()
    eventually(lambda: helpers.depth(settings, broker.dlq_name(queue)) >= 1)


def test_dlq_summarises_reasons_oldest_and_a_sample_without_consuming(settings):
    dead_letter(settings, broker.OUTBOUND, [b'{"severity": 9,\n"x": "' + b"y" * 500 + b'"}'] * 2)
    dead_letter(settings, broker.OUTBOUND, [b"not json"], kind="invalid_json",
                reason="invalid JSON: Expecting value at position 0")
    broker_dead_letter(settings, b'{"crashes": "its consumer"}')
    result = command(settings, "dlq", "events.outbound")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{settings.name('events.outbound')}.dlq: 4 dead letter(s)" in out
    assert "2  invalid_fields: severity: Input should be less" in out
    assert "1  invalid_json: invalid JSON" in out
    assert "1  broker_delivery_limit: dead-lettered by the broker" in out
    assert "oldest: 20" in out
    sample = next(line for line in out.splitlines() if "sample:" in line)
    assert sample.strip().startswith('sample: {"severity": 9, "x": "yyy')
    assert len(sample) < 200
    # Nothing was taken: the same four are still there, and a second look says the same.
    assert helpers.depth(settings, broker.dlq_name(settings.name(broker.OUTBOUND))) == 4
    assert command(settings, "dlq", "events.outbound.dlq").stdout == out


def test_replay_moves_back_only_what_now_parses_and_is_safe_to_run_twice(settings):
    good = factories.message(factories.event())
    fixed = broker.encode(good)
    dead_letter(settings, broker.OUTBOUND, [fixed, b'{"eventId": "nope"}', b"\xff"])
    first = command(settings, "replay", "events.outbound")
    assert first.returncode == 0, first.stderr
    assert "1 replayed, 2 left" in first.stdout
    moved = helpers.drain(settings, settings.name(broker.OUTBOUND))
    assert [body for body, _ in moved] == [fixed]
    assert not {"x-death-reason", "x-death-kind", "x-original-queue"} & set(moved[0][1])
    second = command(settings, "replay", "events.outbound")
    assert "0 replayed, 2 left" in second.stdout
    left = helpers.drain(settings, broker.dlq_name(settings.name(broker.OUTBOUND)))
    assert sorted(body for body, _ in left) == [b'{"eventId": "nope"}', b"\xff"]


def test_a_replayed_decision_reaches_the_work_queue_of_its_own_kind(settings):
    decision = {"assignmentId": 7, "eventId": str(factories.event().event_id),
                "decision": "approved"}
    dead_letter(settings, broker.ACK, [broker.encode(decision)], kind="unknown_reference",
                reason="unknown assignment 7")
    assert "1 replayed" in command(settings, "replay", "ack.queue").stdout
    assert len(helpers.drain(settings, settings.name(broker.ACK))) == 1


def test_a_bad_queue_name_or_a_broker_down_is_one_line_and_a_failure(settings):
    bad = command(settings, "dlq", "events.nowhere")
    assert bad.returncode != 0
    assert bad.stderr.strip() == ("dlq: unknown queue 'events.nowhere': expected one of "
                                  "events.outbound, events.inbound, ack.queue")
    down = command(settings, "replay", "ack.queue", RABBITMQ_PORT="1")
    assert down.returncode != 0
    assert down.stderr.strip().splitlines() == [
        "replay: RabbitMQ at localhost:1 does not answer (AMQPConnectionError)"]


def test_a_full_dead_letter_queue_drops_its_oldest_and_says_so(settings):
    limited = settings.model_copy(update={"DLQ_MAX_LENGTH": 3})
    try:
        assert dlq_policy.apply(limited) in ("rabbitmqctl", "management API")
        queue = broker.dlq_name(settings.name(broker.OUTBOUND))
        connection = broker.connect(settings, "test-declare")
        broker.declare_queues(connection.channel(), settings, [broker.OUTBOUND])
        connection.close()
        eventually(lambda: helpers.queue_policy(queue) == dlq_policy.policy_name(limited))
        with tempfile.TemporaryFile() as logs:
            with running(limited, "assignment", logs=logs):
                helpers.publish_raw(settings, broker.OUTBOUND,
                                    [f'{{"n": {n}}}'.encode() for n in range(6)])
                eventually(lambda: _logged(logs, "is full"), timeout=60,
                           message="the consumer logs the overflow")
            assert helpers.depth(settings, queue) == 3
            kept = helpers.drain(settings, queue)
            assert [body for body, _ in kept] == [b'{"n": 3}', b'{"n": 4}', b'{"n": 5}']
            logs.seek(0)
            assert "DLQ_MAX_LENGTH=3" in logs.read().decode()
    finally:
        dlq_policy.clear(limited)


def test_the_overflow_is_counted(settings):
    limited = settings.model_copy(update={"DLQ_MAX_LENGTH": 1})
    dead_letter(settings, broker.INBOUND, [b"x", b"y"])
    connection = broker.connect(settings, "test-overflow")
    label = {"queue": "events.inbound.dlq"}
    before = dlq.DEAD_LETTERS_DROPPED.labels(**label)._value.get()
    dlq.note_depth(connection.channel(), limited, broker.INBOUND, published=2)
    connection.close()
    assert dlq.DEAD_LETTERS_DROPPED.labels(**label)._value.get() == before + 2


def _logged(logs, text: str) -> bool:
    logs.seek(0)
    return text in logs.read().decode("utf-8", "replace")
