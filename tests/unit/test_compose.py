"""docker-compose.yml and `make up`'s supervisord.conf run the same processes; compose is
valid, every long-running service restarts and has a health check.

There is no Docker engine on this machine: the compose file is checked against the compose
specification's schema (check-jsonschema), and its services against what `make up` runs.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import yaml

from consumers.__main__ import PROCESSES

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def procfile() -> dict[str, str]:
    """Each program of deployments/supervisord.conf → its command."""
    config = configparser.RawConfigParser()
    config.read(ROOT / "deployments" / "supervisord.conf")
    return {section.split(":", 1)[1]: config.get(section, "command")
            for section in config.sections() if section.startswith("program:")}


def test_compose_file_follows_the_compose_specification():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_long_running_process_runs_in_compose_and_under_make_up():
    services = compose()["services"]
    processes = procfile()
    for name in PROCESSES:
        assert services[name]["command"] == ["python", "-m", "consumers", name]
        assert processes[name] == f"python -m consumers {name}"
    for name in ("api", "console", "deployments"):
        assert name in services and name in processes
    assert "deployments.serve" in services["deployments"]["command"]
    assert "deployments.serve" in processes["deployments"]


def test_servers_and_ports_are_those_of_design():
    services = compose()["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert services["rabbitmq"]["image"] == "rabbitmq:3-management"
    published = {port for s in services.values() for port in s.get("ports", [])}
    assert {"3000:3000", "3001:3001", "127.0.0.1:4200:4200",
            "127.0.0.1:15672:15672"} <= published


def test_every_long_running_service_restarts_and_has_a_health_check():
    services = compose()["services"]
    for name in (*PROCESSES, "deployments", "api", "console", "prefect-server"):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    for name in (*PROCESSES, "deployments"):
        assert services[name]["healthcheck"]["test"][-2:] == ["healthcheck", name]


def test_credentials_come_from_the_environment_not_guest():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "guest" not in text
    broker = compose()["services"]["rabbitmq"]["environment"]
    assert broker["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD:?")
    assert compose()["x-settings"]["RABBITMQ_PASSWORD"].startswith("${RABBITMQ_PASSWORD:?")


def test_event_generator_takes_the_count_as_its_argument():
    generator = compose()["services"]["event-generator"]
    assert generator["entrypoint"] == ["python", "-m", "common.services.generator"]
    assert generator["profiles"] == ["tools"]


def test_compose_and_make_up_run_expiry_and_cleanup_every_minute_by_default():
    settings = compose()["x-settings"]
    assert settings["EXPIRED_EVENT_CRON"] == "${EXPIRED_EVENT_CRON:-* * * * *}"
    assert settings["INACTIVE_USER_CRON"] == "${INACTIVE_USER_CRON:-* * * * *}"
    serve = procfile()["deployments"]
    assert "--default 'EXPIRED_EVENT_CRON=* * * * *'" in serve
    assert "--default 'INACTIVE_USER_CRON=* * * * *'" in serve
