"""Events as the cameras produce them: the allowed values, a random event, the wire format.

Standard library only. `now` and the random generator are arguments, never read inside.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime

REGIONS = ("NA", "EU", "APAC", "LATAM")
RULE_TYPES = ("motion_detection", "object_detection", "face_detection", "intrusion_detection")
LOCATIONS = ("entrance", "parking_lot", "lobby", "warehouse", "office")
SEVERITIES = (1, 2, 3, 4, 5)
NOT_VIEWED = "Not Viewed"
VIEWED = "Viewed"

DEVICES = 100
CAMERAS = 500

# The source's rules for the free-text fields, named once: the longest value of each (in
# characters), and every one non-empty. pydantic's OutboundEvent derives its limits from
# these; sql/relay_service/002_source_rules.sql states them as CHECKs (a test holds the two
# to the same verdict). Rule types are NOT a closed set: a camera may report a new kind of
# detection, and an operator should still see it; RULE_TYPES is only what the generator makes.
MAX_LENGTHS = {
    "rule_type": 100,
    "location": 100,
    "device_id": 200,
    "camera_id": 200,
    "frame_reference": 500,
}
MIN_LENGTH = 1
# PostgreSQL text cannot hold NUL: a message carrying one could never be stored.
UNSTORABLE_CHARACTER = "\x00"

# Columns of relay_service.events that a new event fills, in insert order.
COLUMNS = (
    "event_id",
    "region",
    "rule_type",
    "location",
    "severity",
    "device_id",
    "camera_id",
    "frame_reference",
    "state",
    "created_at",
)

_INTEGER = re.compile(r"\s*\+?\d+\s*")


def random_event(rng: random.Random, now: datetime) -> dict:
    """One new event as a producer would insert it. Called by the generator service."""
    event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    return {
        "event_id": event_id,
        "region": rng.choice(REGIONS),
        "rule_type": rng.choice(RULE_TYPES),
        "location": rng.choice(LOCATIONS),
        "severity": rng.randint(1, 5),
        "device_id": f"device_{rng.randint(1, DEVICES)}",
        "camera_id": f"camera_{rng.randint(1, CAMERAS)}",
        # The event id makes the frame reference unique; the time makes it readable.
        "frame_reference": f"frame_{now:%Y%m%dT%H%M%S}_{event_id.hex}.jpg",
        "state": NOT_VIEWED,
        "created_at": now,
    }


def text_refusal(value: str) -> str | None:
    """Why `value` can never be stored as text (NUL, or a lone surrogate that is not UTF-8);
    else None. Called by the message models of common/messages.py."""
    if UNSTORABLE_CHARACTER in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"not valid Unicode at character {error.start}"
    return None


def count_refusal(value: object, maximum: int) -> str | None:
    """Why `value` is not an acceptable number of events to generate, in one line; else None.

    Called by the generator's command line, its Prefect flow and its service.
    """
    if isinstance(value, bool):
        return f"count must be a positive integer, got {value!r}"
    if isinstance(value, str):
        if not _INTEGER.fullmatch(value):
            return f"count must be a positive integer, got {value!r}"
        value = int(value)
    if not isinstance(value, int):
        return f"count must be a positive integer, got {value!r}"
    if value <= 0:
        return f"count must be a positive integer, got {value}"
    if value > maximum:
        return f"count {value} is above the maximum of {maximum} (GENERATE_MAX_COUNT)"
    return None


def to_message(row: dict) -> dict:
    """The JSON body of an event on events.outbound (camelCase, as DESIGN.md names it).

    Called by the relay for every row it publishes.
    """
    created_at = row["created_at"]
    return {
        "eventId": str(row["event_id"]),
        "region": row["region"],
        "ruleType": row["rule_type"],
        "location": row["location"],
        "severity": row["severity"],
        "deviceId": row["device_id"],
        "cameraId": row["camera_id"],
        "frameReference": row["frame_reference"],
        "createdAt": created_at.isoformat() if isinstance(created_at, datetime) else created_at,
        "state": row["state"],
    }


def describe(event: dict) -> str:
    """One line naming an event, for the generator's report of small counts."""
    return (
        f"{event['event_id']} {event['region']} {event['rule_type']} at {event['location']} "
        f"severity {event['severity']} ({event['device_id']}/{event['camera_id']})"
    )
