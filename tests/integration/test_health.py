"""The API's /health (DESIGN.md, Operations) and the heartbeats it reads."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

from fastapi.testclient import TestClient

from common import health, heartbeat
from common.api.app import create_app
from common.resources import redis_client
from tests import servers
from tests.processes import ROOT, free_port


def api(settings) -> TestClient:
    return TestClient(create_app(settings))


def beat_all(settings, but: tuple[str, ...] = ()) -> list[heartbeat.Heartbeat]:
    """One beat for each long-running process except `but`, as if it were running."""
    beats = [heartbeat.Heartbeat(settings, name, redis_client(settings))
             for name in heartbeat.PROCESSES if name not in but]
    for beat in beats:
        beat.file.parent.mkdir(parents=True, exist_ok=True)
        beat.beat()
    return beats


def test_health_is_ok_when_every_server_answers_and_every_process_beats(settings):
    beat_all(settings)
    with api(settings) as client:
        answer = client.get("/health")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok"
    assert set(body["servers"].values()) == {"ok"} and len(body["servers"]) == 4
    assert set(body["processes"]) == set(heartbeat.PROCESSES)
    for process in body["processes"].values():
        assert process["status"] == "ok" and process["instances"] == 1
        assert process["last_seen"]


def test_health_is_degraded_naming_a_missing_process(settings):
    beat_all(settings, but=("relay",))
    with api(settings) as client:
        answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "degraded"
    assert body["processes"]["relay"] == {"status": "missing", "instances": 0,
                                          "last_seen": None}
    assert body["processes"]["ack"]["status"] == "ok"


def test_a_process_whose_beats_stopped_is_stale(settings):
    beat_all(settings)
    old = json.dumps({"time": time.time() - 4 * settings.HEARTBEAT_SECONDS})
    client = redis_client(settings)
    key = heartbeat.key(settings)
    for field in [f for f in client.hkeys(key) if f.startswith("inbound:")]:
        client.hset(key, field, old)
    with api(settings) as test_client:
        body = test_client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["processes"]["inbound"]["status"] == "stale"
    assert body["processes"]["inbound"]["instances"] == 0


def test_health_is_503_naming_the_server_down_without_raw_error_text(settings):
    beat_all(settings)
    port = free_port()
    down = settings.model_copy(update={"RABBITMQ_PORT": port})
    with api(down) as client:
        answer = client.get("/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "down"
    assert body["servers"]["RabbitMQ"] == "down"
    assert body["servers"]["Redis"] == "ok"
    assert "RabbitMQ" in body["detail"]
    text = answer.text
    for raw in (str(port), "127.0.0.1", "localhost", "refused", "Errno"):
        assert raw not in text, raw


def test_health_checks_the_relay_database_not_just_assignments(settings):
    down = settings.model_copy(update={"POSTGRES_DB_RELAY": "no_such_database_here"})
    with api(down) as client:
        answer = client.get("/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["servers"]["PostgreSQL relay_service"] == "down"
    assert body["servers"]["PostgreSQL assignment_service"] == "ok"
    assert "no_such_database_here" not in answer.text


def test_a_hung_main_loop_stops_beating(settings):
    quick = settings.model_copy(update={"HEARTBEAT_SECONDS": 0.5})
    beat = heartbeat.Heartbeat(quick, "ack", redis_client(quick))
    assert beat.alive()
    time.sleep(1.2)  # longer than HUNG_AFTER_BEATS periods without a tick
    assert not beat.alive()
    beat.tick()
    assert beat.alive()


def healthcheck(settings, name: str) -> subprocess.CompletedProcess:
    env = servers.settings_env(settings)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "consumers", "healthcheck", name], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_the_compose_healthcheck_asks_whether_its_own_beat_is_fresh(settings, tmp_path):
    local = settings.model_copy(update={"HEARTBEAT_DIR": str(tmp_path)})
    refused = healthcheck(local, "assignment")
    assert refused.returncode == 1 and "assignment" in refused.stderr
    beat_all(local, but=("relay",))
    assert healthcheck(local, "assignment").returncode == 0
    assert healthcheck(local, "relay").returncode == 1


def test_the_health_probe_keeps_its_broker_connection_between_rare_checks(settings, caplog):
    """/health called less often than the broker's heartbeat timeout: the probe's connection
    must still be the same open one, with no reset for pika to log."""
    quick = settings.model_copy(update={"RABBITMQ_HEARTBEAT_SECONDS": 1})
    probe = health.BrokerProbe(quick)
    try:
        assert probe.check() is None
        first = probe._conn
        with caplog.at_level(logging.INFO):
            time.sleep(4)  # twice the heartbeat and more with no check
            assert probe.check() is None
        assert probe._conn is first
    finally:
        probe.close()
    assert not [r for r in caplog.records if r.levelno >= logging.INFO
                and r.name.startswith(("pika", "common.health"))], caplog.text
