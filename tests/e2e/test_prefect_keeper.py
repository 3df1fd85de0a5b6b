"""The Prefect server's keeper (deployments/prefect_server.py), on its own, on a free port.

Its server killed: the keeper forks the next, which answers. The keeper killed: its server
goes on answering, a second keeper's server takes over and stops it. SIGTERM to a keeper:
its server and it end, and nothing of the program is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from deployments.prefect_server import (
    BACKOFF_MAX,
    SERVER_PID_FILE,
    is_our_server,
    pause_before_fork,
)
from tests.processes import ROOT, eventually, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

START_WITHIN = 300  # a fresh Prefect database on a crowded machine


class Keeper:
    def __init__(self, home: Path, port: int, log: Path):
        env = {**os.environ, "PREFECT_HOME": str(home), "PYTHONPATH": str(ROOT),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
        env.pop("PREFECT_API_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deployments.prefect_server", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


class Answers(threading.Thread):
    """Asks for the server's health every 50 ms; counts what failed."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.ok, self.failed = url, threading.Event(), 0, []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                httpx.get(self.url, timeout=30).raise_for_status()
                self.ok += 1
            except httpx.HTTPError as error:
                self.failed.append(repr(error))
            time.sleep(0.05)


def serving(home: Path) -> int:
    try:
        pid = int((home / SERVER_PID_FILE).read_text())
    except (OSError, ValueError):
        return 0
    return pid if is_our_server(pid) else 0


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_pause_grows_only_for_servers_dying_young_in_a_row():
    assert pause_before_fork(0) == 0 and pause_before_fork(1) == 0
    pauses = [pause_before_fork(n) for n in range(2, 12)]
    assert pauses == sorted(pauses) and pauses[0] > 0 and pauses[-1] == BACKOFF_MAX


def test_a_killed_server_or_keeper_leaves_the_port_answering(tmp_path):
    home, port, log = tmp_path / "prefect", free_port(), tmp_path / "keeper.log"
    url = f"http://127.0.0.1:{port}/api/health"
    first = Keeper(home, port, log)
    second = None
    try:
        server = eventually(lambda: serving(home), timeout=START_WITHIN, interval=0.2,
                            message="the first server serves")
        assert answers(url)

        # The server killed: the keeper forks the next; connections wait, none is refused.
        watching = Answers(url)
        watching.start()
        os.kill(server, signal.SIGKILL)
        started = time.monotonic()
        server = eventually(lambda: (p := serving(home)) not in (0, server) and p,
                            timeout=60, interval=0.05, message="the keeper forked a new server")
        print(f"server killed: the next one serves after {time.monotonic() - started:.2f} s")

        # The keeper killed: its server goes on; a new keeper's server relieves it.
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        time.sleep(1)
        assert is_our_server(server) and answers(url)
        second = Keeper(home, port, log)
        started = time.monotonic()
        eventually(lambda: serving(home) not in (0, server) and not is_our_server(server),
                   timeout=START_WITHIN, interval=0.1, message="the new keeper's server took over")
        print(f"keeper killed: relieved after {time.monotonic() - started:.2f} s")
        watching.stop.set()
        watching.join()
        assert watching.ok > 0 and watching.failed == [], watching.failed

        # SIGTERM: the keeper stops its server, then itself.
        last = serving(home)
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(timeout=60) == 0
        assert not is_our_server(last)
        assert "stopped" in log.read_text()
    finally:
        for keeper in (first, second):
            if keeper and keeper.proc.poll() is None:
                keeper.proc.kill()
        if (pid := serving(home)):
            os.kill(pid, signal.SIGKILL)
