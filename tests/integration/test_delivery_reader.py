"""The delivery reader (common/adapters/deliveries.py) hands the consumer exactly what pika
would: the same deliveries, tags, bodies and headers, in the same order, on a real quorum
queue, whatever the reads split and whatever pika must read itself."""

from __future__ import annotations

import random

import pika
import pytest

from common.adapters import broker, deliveries

QUEUE = "reader.test"
FRAME_MAX = 131072


def _messages() -> list[tuple[bytes, dict | None]]:
    """Plain bodies of many sizes, some with headers (nested, as a dead letter's are),
    one empty body and bodies over a frame: the last two kinds are pika's to read."""
    rng = random.Random(7)
    out: list[tuple[bytes, dict | None]] = []
    for i in range(3000):
        size = rng.choice([1, 40, 300, 331, 1000, 4096, 20_000])
        out.append((f"{i:06d}".encode() + rng.randbytes(size), None))
    for i in range(0, 3000, 97):
        out[i] = (out[i][0], {"x-death-reason": f"reason {i}", "nested": {"n": i, "l": [1, "a"]}})
    out[1500] = (b"", None)
    out[2000] = (b"b" * (FRAME_MAX * 2 + 5), None)
    out[2001] = (b"c" * (FRAME_MAX - 8), None)  # exactly one frame's room
    out[2002] = (b"d" * (FRAME_MAX - 7), None)  # one byte over: two body frames
    return out


def _fill(settings, queue: str, messages) -> None:
    connection = broker.connect(settings, "test-reader-fill")
    channel = connection.channel()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.confirm_delivery()
    for body, headers in messages:
        channel.basic_publish("", queue, body, pika.BasicProperties(
            delivery_mode=2, content_type="application/json", headers=headers))
    connection.close()


def _consume(settings, queue: str, count: int, reader: bool, requeue_new: bool = False):
    """(tag, body, headers) of `count` deliveries, acked in batches as the runner does
    (with `requeue_new`, each first delivery is nacked back once). Returns them, the
    reader and the bytes the connection counted."""
    connection = broker.connect(settings, "test-reader")
    channel = connection.channel()
    channel.basic_qos(prefetch_count=700)
    got: list[tuple[int, bytes, dict]] = []

    def on_message(_channel, method, properties, body):
        got.append((method.delivery_tag, body, properties.headers or {}))

    tag = channel.basic_consume(queue, on_message)
    installed = None
    if reader:
        assert deliveries.install(connection, channel, tag,
                                  lambda t, b, h: got.append((t, b, h)))
        installed = connection._impl._on_data_available.__self__
    done: list = []
    while len(done) < count:
        connection.process_data_events(time_limit=0.5)
        batch, got[:] = list(got), []
        if requeue_new:
            for delivery in [d for d in batch if "x-delivery-count" not in d[2]]:
                channel.basic_nack(delivery[0], requeue=True)
                batch.remove(delivery)
            for delivery in batch:
                channel.basic_ack(delivery[0])
        elif batch:
            channel.basic_ack(batch[-1][0], multiple=True)  # acking reads on: more arrive
        done.extend(batch)
    received = connection._impl.bytes_received  # pika zeroes it on close
    connection.close()
    return done, installed, received


def _in_tag_order(got) -> bool:
    tags = [tag for tag, _, _ in got]
    return tags == sorted(set(tags))


def test_the_reader_gives_what_pika_gives_in_the_same_order(settings):
    queue = settings.name(QUEUE)
    messages = _messages()
    expected = [(body, headers or {}) for body, headers in messages]
    counted = {}
    for reader in (False, True):  # pika alone first: the reference
        _fill(settings, queue, messages)
        got, installed, counted[reader] = _consume(settings, queue, len(messages), reader)
        assert [(body, headers) for _, body, headers in got] == expected
        assert _in_tag_order(got)
    # The reader took most, pika the rest (the empty body, those over a frame, those a
    # read split); the connection's byte counter, which pika's heartbeat checker reads,
    # counted the same bytes either way.
    assert len(messages) // 2 < installed.taken <= len(messages) - 4
    assert counted[True] == counted[False] > sum(len(body) for body, _ in messages)


def test_a_redelivery_carries_its_delivery_count_through_the_reader(settings):
    queue = settings.name(QUEUE)
    messages = [(f"m{i}".encode(), None) for i in range(50)]
    _fill(settings, queue, messages)
    got, installed, _ = _consume(settings, queue, 50, reader=True, requeue_new=True)
    assert sorted(body for _, body, _ in got) == sorted(body for body, _ in messages)
    assert {headers.get("x-delivery-count") for _, _, headers in got} == {1}
    assert _in_tag_order(got)
    assert installed.taken >= 1


@pytest.fixture(autouse=True)
def _queue_gone(settings):
    yield
    connection = broker.connect(settings, "test-reader-cleanup")
    connection.channel().queue_delete(settings.name(QUEUE))
    connection.close()
