"""schemathesis against a real API process: every answer must be in the OpenAPI schema.

All checks, as an operator and as a supervisor (each with their own Bearer token), with a
bounded number of examples per operation so the whole file stays within a few minutes. Any
finding fails the test with schemathesis' own report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import httpx
import pytest

from tests.processes import serving_api

# Examples per operation and phase: enough to reach every documented answer, bounded for CI.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261130")


def _token(url: str, username: str) -> str:
    answer = httpx.post(f"{url}/auth/login",
                        json={"username": username, "password": "pass123"}, timeout=30)
    answer.raise_for_status()
    return answer.json()["token"]


def _schemathesis(url: str, token: str, *filters: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", SEED,
        "--workers", "1", "--request-timeout", "30",
        "--header", f"Authorization: Bearer {token}", *filters,
    ]
    # In a temporary directory: schemathesis keeps a cache of its own in the working one.
    with tempfile.TemporaryDirectory() as workdir:
        return subprocess.run(command, capture_output=True, text=True, timeout=600,
                              cwd=workdir)


@pytest.fixture
def api_url(settings):
    with tempfile.TemporaryFile() as logs, serving_api(settings, logs) as url:
        yield url


@pytest.mark.parametrize("username", ["john.smith", "sarah.connor"])
def test_schemathesis_finds_nothing(api_url, username):
    # Both tokens first: the fuzzed logins may use up this address's attempts for the user.
    # Logging out mid-run would turn the rest of the run into 401s: it gets its own run.
    token, logout_token = _token(api_url, username), _token(api_url, username)
    result = _schemathesis(api_url, token, "--exclude-path", "/auth/logout")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
    logout = _schemathesis(api_url, logout_token, "--include-path", "/auth/logout")
    assert logout.returncode == 0, logout.stdout[-20000:] + logout.stderr[-3000:]
