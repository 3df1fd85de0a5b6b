"""The JSON messages on the queues, parsed strictly with pydantic.

A message that does not parse is a bad message: `parse` raises BadMessage with a one-line
reason and a kind, and never anything else, whatever the bytes (deep nesting, huge numbers,
invalid UTF-8, NUL characters, oversized bodies). The consumer dead-letters it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)

from common.domain import events as rules

# The default of Settings.MESSAGE_MAX_BYTES, for callers without settings.
MESSAGE_MAX_BYTES = 65536
# A reason fits in one header and one log line.
REASON_MAX_CHARS = 300
# The kinds of bad message: few enough to label a metric and group a dead-letter summary by.
KINDS = (
    "too_large",          # over MESSAGE_MAX_BYTES, not read
    "invalid_utf8",
    "invalid_json",       # includes nesting too deep and numbers too long to read
    "not_an_object",
    "invalid_fields",     # refused by the model (types, lengths, closed sets, NUL)
    "unknown_reference",  # names an event or assignment the service does not hold
    "database_refused",   # a data error from PostgreSQL
    "handler_failed",     # failed alone while its batch-mates succeeded, or too often
    "unreadable",         # the parser itself failed unexpectedly
)
BIGINT_MAX = 2**63 - 1
INTEGER_MAX = 2**31 - 1


def one_line(text: str, limit: int = REASON_MAX_CHARS) -> str:
    """`text` on one line, at most `limit` characters: safe for a header and a log line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class BadMessage(Exception):
    """A message that can never be processed; `reason` goes into the dead-letter header.

    `kind` is one of KINDS. The reason is made one line and bounded here, so a reason that
    quotes its input can never blow up a header.
    """

    def __init__(self, reason: str, kind: str = "invalid_fields"):
        reason = one_line(reason)
        super().__init__(reason)
        self.reason = reason
        self.kind = kind if kind in KINDS else "invalid_fields"


def _storable(value: str) -> str:
    refusal = rules.text_refusal(value)
    if refusal:
        raise ValueError(refusal)
    return value


def _text(max_length: int | None = None, min_length: int = 0):
    """A strict string PostgreSQL can store, within these lengths (in characters)."""
    return Annotated[StrictStr, StringConstraints(min_length=min_length, max_length=max_length),
                     AfterValidator(_storable)]


def _source(field: str):
    """A text field of an event, with the source table's limits (common/domain/events.py)."""
    return _text(rules.MAX_LENGTHS[field], rules.MIN_LENGTH)


class _Message(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class OutboundEvent(_Message):
    """An event on events.outbound, as the relay publishes it."""

    event_id: UUID = Field(alias="eventId")
    region: Literal[rules.REGIONS]
    rule_type: _source("rule_type") = Field(alias="ruleType")
    location: _source("location")
    severity: StrictInt = Field(ge=min(rules.SEVERITIES), le=max(rules.SEVERITIES))
    device_id: _source("device_id") = Field(alias="deviceId")
    camera_id: _source("camera_id") = Field(alias="cameraId")
    frame_reference: _source("frame_reference") = Field(alias="frameReference")
    created_at: datetime = Field(alias="createdAt")
    state: Literal[rules.NOT_VIEWED, rules.VIEWED] = rules.NOT_VIEWED


class DecisionMessage(_Message):
    """A decision on events.inbound, and its acknowledgement on ack.queue."""

    assignment_id: StrictInt = Field(alias="assignmentId", ge=1, le=BIGINT_MAX)
    event_id: UUID = Field(alias="eventId")
    decision: Literal["approved", "rejected"]
    reason: _text() | None = None
    note: _text() | None = None
    decided_by: StrictInt | None = Field(default=None, alias="decidedBy", ge=1, le=INTEGER_MAX)
    decided_at: datetime | None = Field(default=None, alias="decidedAt")


def parse(model: type[_Message], body: bytes, max_bytes: int = MESSAGE_MAX_BYTES):
    """Decode and validate one message body, or raise BadMessage saying why; nothing else.

    Called by every consumer (consumers/runner.py) and by whoever replays dead letters.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise BadMessage(f"body is {type(body).__name__}, not bytes", "unreadable")
    if len(body) > max_bytes:
        raise BadMessage(f"body of {len(body)} bytes is over MESSAGE_MAX_BYTES ({max_bytes});"
                         " not read", "too_large")
    try:
        # pydantic's native reader accepts a subset of what the two steps below accept
        # (tests/unit/test_messages.py holds them to it), at a third of the cost; whatever it refuses,
        # the two steps read again, to refuse it with its reason and kind.
        return model.model_validate_json(body)
    except Exception:  # noqa: BLE001, S110 - judged again below
        pass
    try:
        return _validate(model, _decode(body))
    except BadMessage:
        raise
    except Exception as error:  # noqa: BLE001 - the contract: BadMessage, whatever the input
        raise BadMessage(f"unreadable message: {type(error).__name__}: {error}",
                         "unreadable") from None


def _decode(body: bytes) -> dict:
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadMessage(f"invalid UTF-8 at byte {error.start}", "invalid_utf8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadMessage(f"invalid JSON: {error.msg} at position {error.pos}",
                         "invalid_json") from None
    except RecursionError:
        raise BadMessage("invalid JSON: nested too deeply to read", "invalid_json") from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise BadMessage(f"invalid JSON: {error}", "invalid_json") from None
    if not isinstance(data, dict):
        raise BadMessage(f"expected a JSON object, got {type(data).__name__}", "not_an_object")
    return data


def _validate(model: type[_Message], data: dict):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadMessage(describe(error), "invalid_fields") from None
    except RecursionError:
        raise BadMessage("a field is nested too deeply to validate", "invalid_fields") from None


def describe(error: ValidationError) -> str:
    """One bounded line naming each refused field (never quoting the refused input)."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:5]:
        field = ".".join(one_line(p, 40) for p in item["loc"]) or "message"
        parts.append(f"{field}: {one_line(item['msg'], 120)}")
    return one_line("; ".join(parts))


def event_id_of(body: bytes, max_bytes: int = MESSAGE_MAX_BYTES) -> UUID | None:
    """The readable `eventId` of a body that may be bad in every other way; else None.

    Called by the assignment consumer to record which event it dead-lettered.
    """
    if len(body) > max_bytes:
        return None
    try:
        data = json.loads(bytes(body).decode("utf-8"))
        return UUID(data["eventId"]) if isinstance(data.get("eventId"), str) else None
    except Exception:  # noqa: BLE001 - any unreadable body simply has no event id
        return None
