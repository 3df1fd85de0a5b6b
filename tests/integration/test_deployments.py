"""The deployments `python -m deployments.serve` registers: names, schedules, refusals.

The deployments are built exactly as the serve module builds them, from the real flow
modules, without serving them; no Prefect server is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from common.settings import Settings
from deployments import serve

ROOT = Path(__file__).resolve().parents[2]
DESIGN_NAMES = [
    "relay-poll",
    "expire-assignments",
    "cleanup-inactive-users",
    "check-reviewed",
    "reconcile-counters",
    "prune-old-data",
    "generate-events",
]


SCHEDULE_VARIABLES = (
    "EXPIRED_EVENT_CRON", "INACTIVE_USER_CRON", "CHECK_REVIEWED_CRON", "RELAY_POLL_SECONDS",
    "PRUNE_CRON",
)


@pytest.fixture
def code_defaults(monkeypatch):
    """Settings with the code's schedule defaults, whatever the developer's shell exports."""
    for variable in SCHEDULE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return Settings(_env_file=None)


def schedule_of(deployment):
    """The one schedule of a deployment, or None when it runs on demand only."""
    if not deployment.schedules:
        return None
    (only,) = deployment.schedules
    return only.schedule


def by_name(settings: Settings) -> dict:
    return {d.name: d for d in serve.build_deployments(settings)}


def test_every_flow_of_design_is_served_under_its_own_name():
    deployments = serve.build_deployments(Settings(_env_file=None))
    assert [(d.flow_name, d.name) for d in deployments] == [(n, n) for n in DESIGN_NAMES]


def test_schedules_follow_the_configured_crons_and_interval():
    settings = Settings(
        _env_file=None,
        EXPIRED_EVENT_CRON="*/7 * * * *",
        INACTIVE_USER_CRON="15 3 * * *",
        CHECK_REVIEWED_CRON="* * * * * */15",
        RELAY_POLL_SECONDS=17,
        PRUNE_CRON="0 4 * * 0",
    )
    deployments = by_name(settings)
    assert schedule_of(deployments["prune-old-data"]).cron == "0 4 * * 0"
    assert schedule_of(deployments["expire-assignments"]).cron == "*/7 * * * *"
    assert schedule_of(deployments["cleanup-inactive-users"]).cron == "15 3 * * *"
    assert schedule_of(deployments["check-reviewed"]).cron == "* * * * * */15"
    assert schedule_of(deployments["relay-poll"]).interval == timedelta(seconds=17)
    assert schedule_of(deployments["reconcile-counters"]).interval == timedelta(
        seconds=serve.RECONCILE_SECONDS
    )


def test_defaults_are_the_documented_ones_and_generate_events_runs_on_demand(code_defaults):
    deployments = by_name(code_defaults)
    assert schedule_of(deployments["expire-assignments"]).cron == "0 */2 * * *"
    assert schedule_of(deployments["cleanup-inactive-users"]).cron == "0 0 * * *"
    assert schedule_of(deployments["check-reviewed"]).cron == "*/30 * * * *"
    assert schedule_of(deployments["relay-poll"]).interval == timedelta(seconds=60)
    assert schedule_of(deployments["prune-old-data"]).cron == "30 3 * * *"
    assert schedule_of(deployments["generate-events"]) is None
    assert deployments["generate-events"]._parameter_openapi_schema.properties["count"][
        "default"
    ] == 10


def test_make_up_defaults_apply_only_where_the_user_set_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("INACTIVE_USER_CRON=5 4 * * *\n")
    monkeypatch.delenv("INACTIVE_USER_CRON", raising=False)
    monkeypatch.delenv("EXPIRED_EVENT_CRON", raising=False)
    monkeypatch.setenv("CHECK_REVIEWED_CRON", "*/9 * * * *")
    settings = serve.with_defaults(
        Settings(),
        [
            "EXPIRED_EVENT_CRON=* * * * *",
            "INACTIVE_USER_CRON=* * * * *",
            "CHECK_REVIEWED_CRON=* * * * *",
        ],
    )
    assert settings.EXPIRED_EVENT_CRON == "* * * * *"
    assert settings.INACTIVE_USER_CRON == "5 4 * * *"
    assert settings.CHECK_REVIEWED_CRON == "*/9 * * * *"


def test_a_missing_flow_module_is_named_not_skipped():
    job = serve.Job("no-such-flow", "flows.no_such_flow", "no_such_flow", lambda s: {})
    with pytest.raises(serve.MissingFlow, match="flows.no_such_flow"):
        serve.build_deployments(Settings(_env_file=None), [job])


def test_prefect_yaml_lists_the_same_seven_deployments_with_the_default_schedules(code_defaults):
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    defaults = by_name(code_defaults)
    listed = {d["name"]: d for d in spec["deployments"]}
    assert sorted(listed) == sorted(DESIGN_NAMES)
    for job in serve.JOBS:
        entry = listed[job.name]
        assert entry["entrypoint"] == job.entrypoint
        schedule = schedule_of(defaults[job.name])
        if schedule is None:
            assert not entry.get("schedules")
        elif hasattr(schedule, "cron"):
            assert entry["schedules"] == [{"cron": schedule.cron}]
        else:
            assert entry["schedules"] == [{"interval": int(schedule.interval.total_seconds())}]


def test_serve_refuses_a_cron_that_does_not_parse_naming_its_variable():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EXPIRED_EVENT_CRON": "every tuesday"}
    result = subprocess.run(
        [sys.executable, "-m", "deployments.serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "EXPIRED_EVENT_CRON" in lines[0], result.stderr
