"""The work-pool way of running the flows (issue 10, item 3), for real.

The test starts a Prefect server of its own (SQLite in a temporary PREFECT_HOME, a free
port, no telemetry, its scheduler off so that the only run is the one the test asks for),
creates the process work pool of deployments/prefect.yaml, deploys every deployment of that
file with the README's command, and starts the README's worker, `make worker`, as a process
of its own. The worker's environment carries the test's settings (databases, NAMESPACE);
`make worker` adds PREFECT_WORKDIR, where the yaml's pull step finds the code: this
checkout. A run of generate-events, asked through the server's API, must reach Completed
through the worker and leave its events in the test's relay database. At the end, no
process that carries the test's PREFECT_HOME is left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from common.resources import relay_connection
from tests import servers
from tests.processes import ROOT, eventually, free_port

# A Prefect server starts in 7 s on a quiet machine and took over a minute on a loaded one;
# each `prefect` command pays about 3 s of imports, half a minute when five agents share
# two cores. Generous bounds, not speed claims; the times are printed.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PREFECT_FILE = ROOT / "deployments" / "prefect.yaml"
SPEC = yaml.safe_load(PREFECT_FILE.read_text())
POOL = SPEC["definitions"]["work_pool"]["name"]
STEP_TIMEOUT = 240
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def prefect_env(settings, home: Path, api: str) -> dict[str, str]:
    """The test's settings plus a Prefect of its own; nothing inherited from the shell's.

    No PREFECT_WORKDIR: `prefect deploy` would write its value into the deployments, and the
    worker's own (from `make worker`) is the one that must count."""
    env = {k: v for k, v in servers.settings_env(settings).items()
           if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PYTHONPATH": str(ROOT),
        "METRICS_PORT": "0",
    })
    return env


@contextlib.contextmanager
def started(env: dict[str, str], log: Path, *command: str):
    """COMMAND in a session of its own; its whole group stopped after."""
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen, grace: float = 30) -> None:
    """Ctrl-C to the group, as on a terminal; SIGKILL after `grace` s (a worker told to stop
    was once seen still running six minutes later)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def prefect(env: dict[str, str], log: Path, *args: str) -> None:
    """One `prefect` command to its end; a failure shows the end of its output."""
    with log.open("ab") as out:
        result = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, timeout=STEP_TIMEOUT)
    assert result.returncode == 0, f"prefect {' '.join(args)}:\n{log.read_text()[-4000:]}"


def answers(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def processes_with(home: Path, *outside: subprocess.Popen) -> list[int]:
    """Pids of the processes whose environment names this PREFECT_HOME, but for the process
    groups of `outside`."""
    marker = f"PREFECT_HOME={home}".encode()
    groups = {proc.pid for proc in outside}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (marker in (entry / "environ").read_bytes().split(b"\0")
                        and os.getpgid(int(entry.name)) not in groups):
                    found.append(int(entry.name))
    return found


def final_state(http: httpx.Client, run_id: str) -> dict | None:
    run = http.get(f"/flow_runs/{run_id}").json()
    return run if run["state"]["type"] in FINAL else None


def test_a_worker_on_the_process_pool_runs_a_deployment_of_prefect_yaml(settings, tmp_path):
    home = tmp_path / "prefect"
    home.mkdir()
    api = f"http://127.0.0.1:{free_port()}/api"
    env = prefect_env(settings, home, api)
    port = api.rsplit(":", 1)[1].split("/")[0]
    log = tmp_path / "prefect.log"
    took: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        took[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    try:
        with started(env, log, sys.executable, "-m", "prefect", "server", "start",
                     "--host", "127.0.0.1", "--port", port) as server:
            eventually(lambda: answers(api), timeout=STEP_TIMEOUT, interval=0.5,
                       message="the Prefect server answers /health")
            lap("server")
            prefect(env, log, "work-pool", "create", POOL, "--type", "process")
            lap("pool")
            # The README's worker: `make worker` gives PREFECT_WORKDIR its checkout. It
            # starts while the deployments are made, as a worker on another machine would.
            with started(env, tmp_path / "worker.log", "make", "-s", "worker") as worker, \
                    httpx.Client(base_url=api, timeout=30) as http:
                prefect(env, log, "--no-prompt", "deploy", "--prefect-file",
                        str(PREFECT_FILE.relative_to(ROOT)), "--all")
                lap("deploy")
                check_deployed(http)
                deployment = http.get("/deployments/name/generate-events/generate-events").json()
                run = http.post(f"/deployments/{deployment['id']}/create_flow_run",
                                json={"parameters": {"count": 5}}).json()
                done = eventually(lambda: final_state(http, run["id"]),
                                  timeout=STEP_TIMEOUT, interval=1,
                                  message="the flow run reaches a final state")
                lap("run")
                # The run's process (a session of its own) still reports its end after the
                # state is final: it must leave by itself, before its worker stops.
                eventually(lambda: not processes_with(home, server, worker),
                           timeout=STEP_TIMEOUT, interval=0.5,
                           message="the flow run's process exits")
                lap("run exit")
        lap("stop")
    except BaseException:
        for name in ("prefect.log", "worker.log"):
            if (tmp_path / name).exists():
                print(f"--- {name}:\n{(tmp_path / name).read_text(errors='replace')[-6000:]}")
        raise
    finally:
        print(f"seconds per step: {took}")
        left = processes_with(home)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    assert done["state"]["type"] == "COMPLETED", (
        f"{done['state']['type']}: {done['state']['message']}\n--- worker.log:\n"
        f"{(tmp_path / 'worker.log').read_text(errors='replace')[-4000:]}")
    assert done["work_pool_name"] == POOL
    assert done["parameters"] == {"count": 5}
    with relay_connection(settings) as conn:
        assert conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 5
    assert left == [], f"processes left running: {left}"


def check_deployed(http: httpx.Client) -> None:
    """Every deployment of the yaml is on the server, on the pool, with the yaml's schedules
    and its pull step unresolved: PREFECT_WORKDIR is read where the run starts, in the
    worker's environment."""
    deployments = {d["name"]: d for d in http.post("/deployments/filter", json={}).json()}
    listed = {d["name"]: d for d in SPEC["deployments"]}
    assert sorted(deployments) == sorted(listed)
    for name, deployment in deployments.items():
        assert deployment["work_pool_name"] == POOL
        assert deployment["pull_steps"] == SPEC["pull"]
        assert [schedule_of(s["schedule"]) for s in deployment["schedules"]] == listed[name][
            "schedules"], name


def schedule_of(schedule: dict) -> dict:
    """A schedule as the server holds it, written as in the yaml."""
    if "cron" in schedule:
        return {"cron": schedule["cron"]}
    return {"interval": int(schedule["interval"])}
