"""Parsing a message body never raises anything but BadMessage, whatever the bytes."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.messages import (
    KINDS,
    REASON_MAX_CHARS,
    BadMessage,
    DecisionMessage,
    OutboundEvent,
    event_id_of,
    parse,
)

MODELS = (OutboundEvent, DecisionMessage)
VALID_EVENT = {"eventId": str(uuid.uuid4()), "region": "EU", "ruleType": "motion_detection",
               "location": "lobby", "severity": 3, "deviceId": "device_1",
               "cameraId": "camera_1", "frameReference": "frame_1.jpg",
               "createdAt": "2026-01-01T00:00:00+00:00"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)


def outcome(model, body: bytes):
    try:
        return parse(model, body)
    except BadMessage as error:
        assert error.kind in KINDS
        assert "\n" not in error.reason and len(error.reason) <= REASON_MAX_CHARS
        return error


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("body", [
    b"[" * 100_000,
    b"[" * 30_000,
    b'{"assignmentId": ' + b"9" * 5_000 + b"}",
    b'{"eventId": "' + b"x" * 60_000 + b'"}',
    b"\xff\xfe",
    b'{"location": "a\\u0000b", "reason": "\\ud800"}',
    b"x" * 70_000,
])
def test_hostile_bodies_become_bad_messages_with_a_short_reason(model, body):
    assert isinstance(outcome(model, body), BadMessage)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_bad_message(body):
    for model in MODELS:
        outcome(model, body)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*VALID_EVENT, "assignmentId", "decision", "reason"]),
                       json_values, max_size=12))
def test_any_json_object_either_validates_or_is_a_bad_message(fields):
    body = json.dumps({**VALID_EVENT, **fields}).encode()
    for model in MODELS:
        outcome(model, body)


def test_text_that_postgresql_cannot_store_is_refused():
    for bad in ("a\u0000b", "\ud800"):
        body = json.dumps({**VALID_EVENT, "location": bad}).encode()
        assert outcome(OutboundEvent, body).kind == "invalid_fields"


def test_a_body_over_the_limit_is_refused_unread():
    error = outcome(OutboundEvent, b"{" + b" " * 70_000 + b"}")
    assert error.kind == "too_large" and "MESSAGE_MAX_BYTES" in error.reason
    assert parse(OutboundEvent, json.dumps(VALID_EVENT).encode(), max_bytes=10**6)


def test_the_event_id_of_a_bad_event_is_read_when_readable():
    event_id = uuid.uuid4()
    assert event_id_of(json.dumps({"eventId": str(event_id), "x": []}).encode()) == event_id
    assert event_id_of(b"[" * 30_000) is None
    assert event_id_of(b'{"eventId": 5}') is None


def _both(model, body: bytes):
    """(native reader's model or None, the two-step reader's model or None)."""
    from common.messages import _decode, _validate
    try:
        native = model.model_validate_json(body)
    except Exception:  # noqa: BLE001 - refused
        native = None
    try:
        strict = _validate(model, _decode(body))
    except BadMessage:
        strict = None
    return native, strict


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from([*VALID_EVENT, "assignmentId", "decision", "reason",
                                        "decidedAt", "note"]),
                       json_values | st.sampled_from(["2026-01-01", "1e3", "\ud800", "a\u0000"]),
                       max_size=12),
       st.sampled_from(["", " ", "x", "\ufeff", "{}", "\n"]))
def test_the_native_reader_accepts_nothing_the_two_steps_refuse(fields, suffix):
    body = (json.dumps({**VALID_EVENT, **fields}) + suffix).encode("utf-8", "surrogatepass")
    for model in MODELS:
        native, strict = _both(model, body)
        if native is not None:
            assert native == strict


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_the_native_reader_accepts_no_random_bytes_the_two_steps_refuse(body):
    for model in MODELS:
        native, strict = _both(model, body)
        assert native is None or native == strict
