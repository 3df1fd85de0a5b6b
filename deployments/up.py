"""`python -m deployments.up` (`make up`): the whole system under supervisord, in the foreground.

Holds a lock in the state directory (default ./var), so a second `make up` says that one is
already running and exits 1. Starts supervisord with deployments/supervisord.conf, waits
until every part answers (the API's /health with every process beating, the console, the
Prefect server), then prints the addresses and the demo logins. Ctrl-C (or SIGTERM) reaches
supervisord, which stops the programs in reverse priority: the flow runner before the
Prefect server. Exits with supervisord's status.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from common.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deployments" / "supervisord.conf"
# Readiness is polled this often, for at most --ready-timeout seconds.
POLL_SECONDS = 1.0
DEMO_LOGINS = (
    "operators  john.smith (US), carlos.garcia (LATAM), liu.yang (APAC), mike.ross (EU),",
    "           ana.silva (LATAM), marie.dubois (EU)",
    "supervisors emma.wilson (EU), sarah.connor (US), raj.patel (APAC), james.wilson (US)",
    "password   pass123 (demo accounts)",
)


def say(line: str) -> None:
    print(f"{'up':<12}| {line}", flush=True)


def take_lock(state: Path):
    """The lock file, held open for the launcher's life; exit 1 if another launcher has it."""
    lock = open(state / "up.lock", "a+")  # noqa: SIM115 - held until the process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        pid = lock.read().strip() or "?"
        print(f"make up: already running (pid {pid}) with state in {state}; "
              "stop it with Ctrl-C in its terminal", file=sys.stderr)
        raise SystemExit(1) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def environment(settings: Settings, state: Path) -> dict[str, str]:
    """What supervisord and its programs need on top of the caller's environment."""
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str(state / "prefect"))
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    env.update({
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "UP_ROOT": str(ROOT),
        "UP_STATE_DIR": str(state),
        "API_PORT": str(settings.API_PORT),
        "CONSOLE_PORT": str(settings.CONSOLE_PORT),
        "PREFECT_PORT": str(settings.PREFECT_PORT),
        "PREFECT_API_URL": f"http://127.0.0.1:{settings.PREFECT_PORT}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    })
    env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    return env


def parts(settings: Settings) -> dict[str, tuple[str, bool]]:
    """Each part of the system → (URL that answers 200 once it is ready, whether the body
    must also say `"status": "ok"`: the API's /health, where every process beats)."""
    return {
        "API and every process": (f"http://127.0.0.1:{settings.API_PORT}/health", True),
        "console": (f"http://127.0.0.1:{settings.CONSOLE_PORT}/_stcore/health", False),
        "Prefect server": (f"http://127.0.0.1:{settings.PREFECT_PORT}/api/health", False),
    }


def answers(url: str, status_ok: bool) -> bool:
    try:
        response = httpx.get(url, timeout=3)
        return response.status_code == 200 and (
            not status_ok or response.json().get("status") == "ok")
    except (httpx.HTTPError, ValueError):
        return False


def wait_until_ready(settings: Settings, state: Path, supervisor: subprocess.Popen,
                     patience: float) -> None:
    """Called in a thread by main: poll every part until all answer, then print the front
    door. After `patience` seconds, say which parts lag, and keep waiting."""
    waiting = parts(settings)
    warn_at = time.monotonic() + patience
    while waiting and supervisor.poll() is None:
        waiting = {name: part for name, part in waiting.items() if not answers(*part)}
        if waiting and time.monotonic() > warn_at:
            say(f"not answering yet after {patience:g} s: {', '.join(waiting)} "
                "(still waiting; see the lines above)")
            warn_at = float("inf")
        if waiting:
            time.sleep(POLL_SECONDS)
    if supervisor.poll() is None:
        for line in front_door(settings, state):
            say(line)


def front_door(settings: Settings, state: Path) -> list[str]:
    api, console = settings.API_PORT, settings.CONSOLE_PORT
    return [
        "every part answers.",
        f"console      http://localhost:{console}",
        f"API docs     http://localhost:{api}/docs",
        f"Prefect UI   http://localhost:{settings.PREFECT_PORT}",
        f"metrics      http://localhost:{api}/metrics and, per consumer, "
        "http://localhost:9101-9104/metrics (relay, assignment, inbound, ack)",
        *(f"demo login   {line}" for line in DEMO_LOGINS),
        f"supervisord's own log: {state}/supervisord.log",
        "Ctrl-C stops everything (the flow runner before the Prefect server).",
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deployments.up", description=__doc__)
    parser.add_argument("--state", type=Path, default=ROOT / "var",
                        help="lock, supervisord socket and Prefect's home (default ./var)")
    parser.add_argument("--ready-timeout", type=float, default=300,
                        help="seconds before saying which parts do not answer yet")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = load_settings()
    state = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    lock = take_lock(state)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(CONFIG)],
        env=environment(settings, state), cwd=ROOT,
    )

    def forward(signum, _frame):
        # From a terminal supervisord receives Ctrl-C itself; this covers `kill <launcher>`.
        if supervisor.poll() is None:
            supervisor.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    threading.Thread(target=wait_until_ready, daemon=True,
                     args=(settings, state, supervisor, args.ready_timeout)).start()
    code = supervisor.wait()
    say(f"everything stopped (supervisord exited with {code})")
    lock.close()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
