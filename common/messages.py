"""The JSON messages on the queues, parsed strictly with pydantic.

A message that does not parse is a bad message: the consumer dead-letters it with the
reason `describe(error)` gives.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError


class BadMessage(Exception):
    """A message that can never be processed; `reason` goes into the dead-letter header.

    `kind` is a short, fixed category of the reason (`invalid_utf8`, `invalid_json`,
    `not_an_object`, `invalid_fields`, `unknown_reference`, `database_refused`, ...): few
    enough values to label a metric and group a dead-letter summary by.
    """

    def __init__(self, reason: str, kind: str = "invalid"):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class _Message(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class OutboundEvent(_Message):
    """An event on events.outbound, as the relay publishes it."""

    event_id: UUID = Field(alias="eventId")
    region: Literal["NA", "EU", "APAC", "LATAM"]
    rule_type: StrictStr = Field(alias="ruleType", min_length=1, max_length=100)
    location: StrictStr = Field(min_length=1, max_length=100)
    severity: StrictInt = Field(ge=1, le=5)
    device_id: StrictStr = Field(alias="deviceId", min_length=1, max_length=200)
    camera_id: StrictStr = Field(alias="cameraId", min_length=1, max_length=200)
    frame_reference: StrictStr = Field(alias="frameReference", min_length=1, max_length=500)
    created_at: datetime = Field(alias="createdAt")
    state: Literal["Not Viewed", "Viewed"] = "Not Viewed"


class DecisionMessage(_Message):
    """A decision on events.inbound, and its acknowledgement on ack.queue."""

    assignment_id: StrictInt = Field(alias="assignmentId", ge=1)
    event_id: UUID = Field(alias="eventId")
    decision: Literal["approved", "rejected"]
    reason: str | None = None
    note: str | None = None
    decided_by: StrictInt | None = Field(default=None, alias="decidedBy")
    decided_at: datetime | None = Field(default=None, alias="decidedAt")


def parse(model: type[_Message], body: bytes):
    """Decode and validate one message body, or raise BadMessage saying why."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadMessage(f"invalid UTF-8 at byte {error.start}", "invalid_utf8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadMessage(f"invalid JSON: {error.msg} at position {error.pos}",
                         "invalid_json") from None
    if not isinstance(data, dict):
        raise BadMessage(f"expected a JSON object, got {type(data).__name__}", "not_an_object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadMessage(describe(error), "invalid_fields") from None


def describe(error: ValidationError) -> str:
    """One line naming each refused field."""
    parts = []
    for item in error.errors()[:5]:
        field = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{field}: {item['msg']}")
    return "; ".join(parts)
