import random
import subprocess
import sys
import uuid

import psycopg
import pytest

from common.resources import relay_connection
from common.services.generator import CountRefused, generate_events
from flows.generate_events import generate_events as generate_events_flow
from tests import servers


def event_count(settings) -> int:
    with relay_connection(settings) as conn:
        return conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"]


def run_cli(settings, *args, **env):
    environment = servers.settings_env(settings) | env
    return subprocess.run(
        [sys.executable, "-m", "common.services.generator", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_generator_inserts_exactly_the_requested_number_of_events(settings):
    with relay_connection(settings) as conn:
        assert generate_events(conn, 25_123, report=lambda _: None) == 25_123
        rows = conn.execute(
            "SELECT count(*) AS n, count(DISTINCT frame_reference) AS frames,"
            " bool_and(state = 'Not Viewed' AND dispatched_at IS NULL) AS fresh FROM events"
        ).fetchone()
    assert rows == {"n": 25_123, "frames": 25_123, "fresh": True}


def test_small_counts_report_each_event_and_large_ones_report_progress(settings):
    small, large = [], []
    with relay_connection(settings) as conn:
        generate_events(conn, 3, rng=random.Random(3), report=small.append)
        generate_events(conn, 25_000, report=large.append)
    assert len(small) == 3 and all("severity" in line for line in small)
    assert large == [
        "inserted 10000/25000 events",
        "inserted 20000/25000 events",
        "inserted 25000/25000 events",
    ]


@pytest.mark.parametrize("count", [0, -1, 11])
def test_a_refused_count_inserts_nothing(settings, count):
    with relay_connection(settings) as conn, pytest.raises(CountRefused):
        generate_events(conn, count, maximum=10)
    assert event_count(settings) == 0


@pytest.mark.parametrize(
    ("argument", "words"),
    [
        ("abc", "positive integer"),
        ("0", "positive integer"),
        ("-4", "positive integer"),
        ("101", "above the maximum of 100"),
    ],
)
def test_the_command_refuses_a_bad_count_in_one_line_and_exits_non_zero(settings, argument, words):
    result = run_cli(settings, argument, GENERATE_MAX_COUNT="100")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]
    assert event_count(settings) == 0


def test_the_command_inserts_and_reports_each_event_of_a_small_count(settings):
    result = run_cli(settings, "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("inserted event") == 5
    assert event_count(settings) == 5


def test_the_generate_events_flow_inserts_its_count_and_refuses_a_bad_one(
        settings, monkeypatch, prefect_harness):
    for key, value in servers.settings_env(settings).items():
        monkeypatch.setenv(key, value)
    assert generate_events_flow(count=7) == 7
    with pytest.raises(ValueError, match="positive integer"):
        generate_events_flow(count=0)
    assert event_count(settings) == 7


@pytest.mark.parametrize(
    ("column", "value"), [("region", "MARS"), ("severity", 6), ("severity", 0)]
)
def test_the_database_refuses_a_producer_row_with_an_unknown_region_or_severity(
    settings, column, value
):
    row = {
        "event_id": uuid.uuid4(),
        "region": "EU",
        "rule_type": "motion_detection",
        "location": "lobby",
        "severity": 3,
        "device_id": "device_1",
        "camera_id": "camera_1",
        "frame_reference": f"frame_{uuid.uuid4().hex}",
    } | {column: value}
    with relay_connection(settings) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            f"INSERT INTO events ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
            list(row.values()),
        )
    assert event_count(settings) == 0
