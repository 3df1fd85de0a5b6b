"""relay_service.events accepts exactly the events the assignment consumer accepts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from pydantic import ValidationError

from common.adapters import migrations
from common.domain import events as rules
from common.messages import OutboundEvent
from common.resources import relay_connection

TEXT_FIELDS = tuple(rules.MAX_LENGTHS)
ALIASES = {"rule_type": "ruleType", "device_id": "deviceId", "camera_id": "cameraId",
           "frame_reference": "frameReference"}


def text_near(limit: int):
    """Text around the edges that matter: empty, at the limit, just over, odd characters."""
    alphabet = st.characters(codec="utf-8") | st.sampled_from(["\x00", " ", "é", "字"])
    return st.one_of(
        st.just(""),
        st.text(alphabet, min_size=1, max_size=8),
        st.integers(limit - 1, limit + 1).map(lambda n: "x" * n),
        st.text(alphabet, min_size=limit - 2, max_size=limit + 2),
    )


fields = st.fixed_dictionaries({
    **{name: text_near(rules.MAX_LENGTHS[name]) for name in TEXT_FIELDS},
    "region": st.sampled_from([*rules.REGIONS, "US", ""]),
    "severity": st.integers(0, 6),
})


@pytest.fixture
def relay(settings):
    with relay_connection(settings, autocommit=True) as conn:
        yield conn


def source_accepts(conn, values: dict) -> bool:
    row = {**values, "event_id": uuid.uuid4(), "created_at": datetime.now(UTC)}
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "INSERT INTO events (event_id, region, rule_type, location, severity,"
                " device_id, camera_id, frame_reference, created_at)"
                " VALUES (%(event_id)s, %(region)s, %(rule_type)s, %(location)s,"
                " %(severity)s, %(device_id)s, %(camera_id)s, %(frame_reference)s,"
                " %(created_at)s)", row)
        return True
    except psycopg.DataError:  # NUL in text: psycopg refuses to send it
        return False
    except psycopg.errors.CheckViolation:
        return False


def consumer_accepts(values: dict) -> bool:
    message = {ALIASES.get(k, k): v for k, v in values.items()}
    message.update(eventId=str(uuid.uuid4()), createdAt=datetime.now(UTC).isoformat())
    try:
        OutboundEvent.model_validate(message)
        return True
    except ValidationError:
        return False


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(values=fields)
def test_the_source_table_and_the_consumer_give_the_same_verdict(relay, values):
    assert source_accepts(relay, values) == consumer_accepts(values), values


@pytest.mark.parametrize("field, value", [("location", ""), ("rule_type", "r" * 300)])
def test_the_events_tried_in_the_issue_are_refused_at_the_source(relay, field, value):
    values = {"region": "EU", "severity": 3, "rule_type": "motion_detection",
              "location": "lobby", "device_id": "d", "camera_id": "c", "frame_reference": "f"}
    values[field] = value
    assert not source_accepts(relay, values)
    assert not consumer_accepts(values)


def test_an_unknown_rule_type_is_accepted_by_both(relay):
    values = {"region": "EU", "severity": 3, "rule_type": "smoke_detection",
              "location": "lobby", "device_id": "d", "camera_id": "c", "frame_reference": "f"}
    assert source_accepts(relay, values) and consumer_accepts(values)


def test_a_database_holding_old_rows_that_break_the_rules_still_migrates(settings, tmp_path):
    dbname = f"mig_{uuid.uuid4().hex[:10]}"
    folder = migrations.SQL_ROOT / "relay_service"
    (tmp_path / "001_events.sql").write_text((folder / "001_events.sql").read_text())
    admin = settings.postgres_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        migrations.apply_migrations(settings.postgres_dsn(dbname), tmp_path)
        with psycopg.connect(settings.postgres_dsn(dbname), autocommit=True) as conn:
            conn.execute("INSERT INTO events (event_id, region, rule_type, location, severity,"
                         " device_id, camera_id, frame_reference) VALUES"
                         " (gen_random_uuid(), 'EU', %s, '', 3, 'd', 'c', 'f')", ["r" * 300])
        for path in sorted(folder.glob("*.sql")):
            (tmp_path / path.name).write_text(path.read_text())
        assert "002_source_rules.sql" in migrations.apply_migrations(
            settings.postgres_dsn(dbname), tmp_path)
        with psycopg.connect(settings.postgres_dsn(dbname), autocommit=True) as conn:
            assert not source_accepts(conn, {"region": "EU", "severity": 3, "rule_type": "r",
                                             "location": "", "device_id": "d",
                                             "camera_id": "c", "frame_reference": "f"})
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(dbname)))
