"""APP_ENV=production: a process refuses to start with the demo's secrets, in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.resources import assignment_connection
from common.services import passwords
from tests import servers
from tests.processes import ROOT

SAFE = {"APP_ENV": "production", "CONSOLE_SECRET": "a-long-console-secret-for-tests",
        "RABBITMQ_USER": "events"}


def _run(settings, *command: str, **env) -> subprocess.CompletedProcess:
    environment = servers.settings_env(settings)
    environment.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, *command], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def _refusal(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("refusing to start in production: ")
    return lines[0]


@pytest.mark.parametrize(("override", "reason"), [
    ({"CONSOLE_SECRET": "development-console-secret"}, "development default"),
    ({"CONSOLE_SECRET": "short"}, "shorter than 16"),
    ({"RABBITMQ_USER": "guest"}, "guest"),
    ({"RABBITMQ_URL": "amqps://guest:x@rabbit.example/"}, "guest"),
])
def test_demo_secrets_are_refused(settings, override, reason):
    assert reason in _refusal(_run(settings, "-m", "common.production", **{**SAFE, **override}))


def test_every_process_refuses_while_an_account_accepts_the_demo_password(settings):
    for command in (["-m", "consumers", "relay"], ["-m", "deployments.serve"],
                    ["-m", "uvicorn", "common.api.app:app", "--port", "0"]):
        line = _refusal(_run(settings, *command, **SAFE))
        assert "account john.smith still accepts the demo password" in line, command
        assert "make password ACCOUNT=james.wilson" in line


def test_production_starts_checks_clean_once_every_password_is_changed(settings):
    with assignment_connection(settings, autocommit=True) as conn:
        conn.execute("UPDATE users SET password_hash = %s WHERE id <> 3",
                     [passwords.hash_password("a-proper-password")])
        assert "carlos.garcia" in _refusal(_run(settings, "-m", "common.production", **SAFE))
        conn.execute("UPDATE users SET disabled = true WHERE id = 3")
    result = _run(settings, "-m", "common.production", **SAFE)
    assert result.returncode == 0, result.stderr


def test_development_checks_nothing(settings):
    result = _run(settings, "-m", "common.production", APP_ENV="development")
    assert result.returncode == 0 and result.stderr == ""
