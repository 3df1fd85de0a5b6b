"""`make up`'s launcher (python -m deployments.up) on free ports, for the tests of e2e.

The stack uses the test's settings (its own databases and NAMESPACE), its own state
directory (lock, supervisord socket, Prefect's SQLite) and free ports for the API, the
console and the Prefect server; consumers' metrics ports are off.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from common.settings import Settings
from tests import servers
from tests.processes import ROOT, eventually, free_port

CONFIG = ROOT / "deployments" / "supervisord.conf"
CONSUMERS = ("relay", "assignment", "inbound", "ack")  # the group `consumers`


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    state: Path
    log: Path
    launcher: subprocess.Popen

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.settings.API_PORT}"

    def ctl(self, *args: str) -> str:
        """supervisorctl against this stack's supervisord."""
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(CONFIG), *args],
            env=self.env, capture_output=True, text=True, timeout=30)
        return result.stdout

    def pid(self, program: str) -> int:
        if program in CONSUMERS:
            program = f"consumers:{program}"
        text = self.ctl("pid", program).strip()
        return int(text) if text.isdigit() else 0

    def health(self) -> dict:
        try:
            answer = httpx.get(f"{self.api}/health", timeout=5)
            return answer.json() if answer.status_code in (200, 503) else {}
        except (httpx.HTTPError, ValueError):
            return {}

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def stack_settings(settings: Settings, **overrides) -> Settings:
    api = free_port()
    return settings.model_copy(update={
        "API_PORT": api, "CONSOLE_PORT": free_port(), "PREFECT_PORT": free_port(),
        "API_URL": f"http://127.0.0.1:{api}", **overrides})


def launch(settings: Settings, state: Path, log: Path) -> tuple[subprocess.Popen, dict]:
    env = servers.settings_env(settings)
    env.update({"PYTHONPATH": str(ROOT), "METRICS_PORT": "0", "PYTHONUNBUFFERED": "1",
                "UP_ROOT": str(ROOT), "UP_STATE_DIR": str(state),
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"})
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_HOME", None)
    with log.open("ab") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "deployments.up", "--state", str(state)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return launcher, env


@contextlib.contextmanager
def supervised(settings: Settings, tmp_path: Path, **overrides):
    """The whole stack under the launcher until the block ends; Ctrl-C (SIGINT) stops it."""
    settings = stack_settings(settings, HEARTBEAT_DIR=str(tmp_path / "beats"), **overrides)
    # A short path: the supervisord socket lives here (108 bytes at most).
    state = Path(tempfile.mkdtemp(prefix="up-", dir="/tmp"))
    log = tmp_path / "up.log"
    launcher, env = launch(settings, state, log)
    stack = Stack(settings, env, state, log, launcher)
    try:
        yield stack
    except BaseException:
        print(stack.output()[-12000:])
        raise
    finally:
        stop(stack)
        shutil.rmtree(state, ignore_errors=True)


def stop(stack: Stack) -> None:
    if stack.launcher.poll() is None:
        stack.launcher.send_signal(signal.SIGINT)
        try:
            stack.launcher.wait(90)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(stack.launcher.pid, signal.SIGKILL)
            stack.launcher.wait()


def wait_ready(stack: Stack, timeout: float = 400) -> float:
    """Until the launcher says every part answers; returns the seconds it took."""
    start = time.monotonic()
    eventually(lambda: "every part answers" in stack.output() or stack.launcher.poll(),
               timeout=timeout, interval=0.5, message="the launcher prints the front door")
    assert stack.launcher.poll() is None, stack.output()[-5000:]
    return time.monotonic() - start
