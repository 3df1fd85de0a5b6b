"""The relay's publish frames are byte for byte pika's (common/adapters/broker.py _Frames)."""

import random

import pika
import pytest
from pika import frame, spec

from common.adapters.broker import PERSISTENT, _Frames


class _Connection:
    _body_max_length = 131072 - 8


def _pikas(channel: int, routing_key: str, message_id: str, body: bytes) -> bytes:
    properties = pika.BasicProperties(content_type="application/json",
                                      delivery_mode=PERSISTENT, message_id=message_id)
    method = spec.Basic.Publish(exchange="", routing_key=routing_key, mandatory=True)
    return b"".join((frame.Method(channel, method).marshal(),
                     frame.Header(channel, len(body), properties).marshal(),
                     frame.Body(channel, body).marshal()))


@pytest.mark.parametrize("size", [1, 255, 256, 1000, 65536, 131064])
@pytest.mark.parametrize("channel", [1, 7])
def test_frames_are_pikas(size, channel):
    rng = random.Random(size)
    body = bytes(rng.getrandbits(8) for _ in range(size))
    message_id = f"{size:08x}-0000-4000-8000-000000000000"
    frames = _Frames(_Connection(), channel, "ns-1.events.outbound")
    assert frames.marshal(message_id, body) == _pikas(channel, "ns-1.events.outbound",
                                                      message_id, body)


def test_what_pika_must_write_is_left_to_it():
    frames = _Frames(_Connection(), 1, "events.outbound")
    assert frames.marshal("x", b"") is None  # no body frame at all
    assert frames.marshal("x", b"a" * 131065) is None  # several body frames
    assert frames.marshal("é" * 128, b"{}") is None  # id over a short string
