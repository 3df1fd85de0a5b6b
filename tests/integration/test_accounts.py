"""`python -m common.accounts` and `make password`: accounts from the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.services import sessions
from common.services.errors import Unauthorized
from tests import servers
from tests.integration.waiting import add_waiting_events, live, load_row, query
from tests.processes import ROOT

JOHN = 1


def accounts(settings, *args: str, stdin: str = "", make: bool = False, **env):
    environment = servers.settings_env(settings)
    environment.update(PYTHONPATH=str(ROOT), **env)
    command = (["make", "--no-print-directory", "password", f"ACCOUNT={args[0]}"] if make
               else [sys.executable, "-m", "common.accounts", *args])
    return subprocess.run(command, cwd=ROOT, env=environment, input=stdin,
                          capture_output=True, text=True, timeout=120)


def _one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    return lines[0]


def test_make_password_reads_the_new_password_from_stdin_and_ends_sessions(
        settings, conn, presence):
    token, _ = sessions.login(conn, presence, settings, "john.smith", "pass123")
    result = accounts(settings, "john.smith", stdin="correct horse battery\n", make=True)
    assert result.returncode == 0, result.stderr
    with pytest.raises(Unauthorized):
        sessions.authenticate(conn, presence, settings, token)
    with pytest.raises(Unauthorized):
        sessions.login(conn, presence, settings, "john.smith", "pass123")
    sessions.login(conn, presence, settings, "john.smith", "correct horse battery")


def test_production_refuses_a_short_or_demo_password(settings):
    short = accounts(settings, "password", "john.smith", stdin="short\n",
                     APP_ENV="production")
    assert "shorter than 12" in _one_line_error(short)
    demo = accounts(settings, "password", "john.smith", stdin="pass123\n",
                    APP_ENV="production", PASSWORD_MIN_LENGTH="8")
    assert "pass123" not in demo.stderr and "demo password" in _one_line_error(demo)


def test_an_added_operator_gets_the_next_id_and_a_load_row_and_can_log_in(
        settings, conn, presence):
    result = accounts(settings, "add", "zoe.park", "--name", "Zoe Park", "--role",
                      "operator", "--region", "APAC", stdin="a-new-password\n")
    assert result.returncode == 0, result.stderr
    _, user = sessions.login(conn, presence, settings, "zoe.park", "a-new-password")
    assert (user["id"], user["region"]) == (11, "APAC") and load_row(settings, 11) == 0
    again = accounts(settings, "add", "zoe.park", "--name", "Z", "--role", "operator",
                     "--region", "EU", stdin="another-one\n")
    assert "already exists" in _one_line_error(again)
    bad = accounts(settings, "add", "Bad Name", "--name", "B", "--role", "supervisor",
                   "--region", "MARS", stdin="x-password\n")
    assert "region must be one of" in _one_line_error(bad)


def test_a_disabled_operator_cannot_log_in_and_their_work_is_released(
        settings, conn, presence):
    add_waiting_events(settings, 3)
    token, _ = sessions.login(conn, presence, settings, "john.smith", "pass123")
    assert live(settings, JOHN) == 3
    assert accounts(settings, "disable", "john.smith").returncode == 0
    assert live(settings, JOHN) == 0 and load_row(settings, JOHN) == 0
    assert JOHN not in presence.active_users() and not presence.session_alive(JOHN)
    with pytest.raises(Unauthorized):
        sessions.authenticate(conn, presence, settings, token)
    with pytest.raises(Unauthorized):
        sessions.login(conn, presence, settings, "john.smith", "pass123")
    assert accounts(settings, "enable", "john.smith").returncode == 0
    sessions.login(conn, presence, settings, "john.smith", "pass123")


def test_moving_an_operator_releases_their_work_and_keeps_their_load_row(
        settings, conn, presence):
    add_waiting_events(settings, 2)
    sessions.login(conn, presence, settings, "john.smith", "pass123")
    assert live(settings, JOHN) == 2
    result = accounts(settings, "move", "john.smith", "EU")
    assert result.returncode == 0, result.stderr
    assert query(settings, "SELECT region FROM users WHERE id = 1")[0]["region"] == "EU"
    assert live(settings, JOHN) == 0 and load_row(settings, JOHN) == 0
    assert presence.active_users()[JOHN] == "EU"
    reasons = query(settings, "SELECT DISTINCT reason FROM assignment_history "
                    "WHERE new_state = 'released'")
    assert reasons == [{"reason": "moved_region"}]


def test_an_unknown_account_is_one_line_and_exit_1(settings):
    assert "no account named 'nobody'" in _one_line_error(
        accounts(settings, "disable", "nobody"))


def test_list_names_the_original_ten(settings):
    result = accounts(settings, "list")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 10
    assert "   5 sarah.connor (Sarah Connor) supervisor US enabled" in result.stdout
