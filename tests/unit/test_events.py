import json
import random
import uuid
from datetime import UTC, datetime

import pytest

from common.domain.events import (
    LOCATIONS,
    REGIONS,
    RULE_TYPES,
    count_refusal,
    random_event,
    to_message,
)

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


def events(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    return [random_event(rng, NOW) for _ in range(n)]


def test_a_generated_event_has_every_field_within_its_allowed_values():
    for event in events(2_000):
        assert uuid.UUID(str(event["event_id"])).version == 4
        assert event["region"] in REGIONS
        assert event["rule_type"] in RULE_TYPES
        assert event["location"] in LOCATIONS
        assert 1 <= event["severity"] <= 5
        assert event["device_id"].startswith("device_") and event["device_id"][7:].isdigit()
        assert event["camera_id"].startswith("camera_") and event["camera_id"][7:].isdigit()
        assert event["state"] == "Not Viewed"
        assert event["created_at"] == NOW


def test_every_value_of_each_field_appears_over_many_events():
    sample = events(2_000)
    assert {e["region"] for e in sample} == set(REGIONS)
    assert {e["rule_type"] for e in sample} == set(RULE_TYPES)
    assert {e["location"] for e in sample} == set(LOCATIONS)
    assert {e["severity"] for e in sample} == {1, 2, 3, 4, 5}


def test_event_ids_and_frame_references_are_unique():
    sample = events(20_000)
    assert len({e["event_id"] for e in sample}) == 20_000
    assert len({e["frame_reference"] for e in sample}) == 20_000


def test_the_same_seed_gives_the_same_events():
    assert events(50, seed=7) == events(50, seed=7)
    assert events(50, seed=7) != events(50, seed=8)


@pytest.mark.parametrize("value", [1, 10, "10", " 42 ", 1_000])
def test_a_positive_integer_up_to_the_maximum_is_accepted(value):
    assert count_refusal(value, 1_000) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, "positive integer"),
        (-5, "positive integer"),
        ("0", "positive integer"),
        ("-3", "positive integer"),
        ("abc", "positive integer"),
        ("", "positive integer"),
        ("1.5", "positive integer"),
        (2.0, "positive integer"),
        (True, "positive integer"),
        (None, "positive integer"),
        (1_001, "above the maximum of 1000"),
        ("5000", "above the maximum of 1000"),
    ],
)
def test_a_bad_count_is_refused_with_a_one_line_reason(value, words):
    reason = count_refusal(value, 1_000)
    assert reason is not None and words in reason
    assert "\n" not in reason


def test_the_outbound_message_is_the_camel_case_json_of_the_design():
    event = events(1)[0]
    message = to_message(event)
    assert list(message) == [
        "eventId",
        "region",
        "ruleType",
        "location",
        "severity",
        "deviceId",
        "cameraId",
        "frameReference",
        "createdAt",
        "state",
    ]
    assert message["eventId"] == str(event["event_id"])
    assert message["ruleType"] == event["rule_type"]
    assert message["frameReference"] == event["frame_reference"]
    assert datetime.fromisoformat(message["createdAt"]) == NOW
    assert json.loads(json.dumps(message)) == message
