"""`make up` under supervisord: the front door, a second launcher, restarts, named lines,
Ctrl-C in order. One stack for the whole file (about a minute)."""

from __future__ import annotations

import re
import signal
import time

import httpx
import pytest

from tests.e2e.supervised import launch, supervised, wait_ready
from tests.processes import eventually

# A stack takes ~20 s to start on a quiet machine, minutes on a crowded one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PROGRAMS = ("prefect", "deployments", "relay", "assignment", "inbound", "ack", "api",
            "console")


def test_make_up_supervises_every_process(settings, tmp_path):
    with supervised(settings, tmp_path) as stack:
        took = wait_ready(stack)
        print(f"every part answered after {took:.1f} s")
        out = stack.output()
        api = stack.settings.API_PORT
        for address in (f"http://localhost:{stack.settings.CONSOLE_PORT}",
                        f"http://localhost:{api}/docs",
                        f"http://localhost:{stack.settings.PREFECT_PORT}",
                        f"http://localhost:{api}/metrics", "john.smith", "pass123"):
            assert address in out, address
        assert stack.health()["status"] == "ok"

        # A second launcher on the same state directory says so and exits non-zero.
        second, _ = launch(stack.settings, stack.state, tmp_path / "second.log")
        assert second.wait(60) == 1
        refused = (tmp_path / "second.log").read_text()
        assert f"already running (pid {stack.launcher.pid})" in refused

        # An exiting process is restarted; the others keep running.
        before = {name: stack.pid(name) for name in PROGRAMS}
        assert all(before.values()), before
        httpx.post(f"{stack.api}/auth/login", timeout=10,
                   json={"username": "john.smith", "password": "pass123"})
        stack.ctl("signal", "TERM", "consumers:ack")  # it exits cleanly: still restarted
        eventually(lambda: stack.pid("ack") not in (0, before["ack"]), timeout=30,
                   message="ack restarted")
        eventually(lambda: stack.health().get("processes", {}).get("ack", {})
                   .get("status") == "ok", timeout=30, message="ack beats again")
        after = {name: stack.pid(name) for name in PROGRAMS if name != "ack"}
        assert after == {k: v for k, v in before.items() if k != "ack"}

        # Every line of output names its process.
        out = stack.output()
        for name in ("relay", "assignment", "inbound", "ack", "api", "deployments"):
            assert re.search(rf"^{name} +\| ", out, re.M), name
        assert re.search(r"^ack +\| -- exited", out, re.M)
        assert re.search(r"^api +\| .*POST /auth/login", out, re.M)
        for line in out.splitlines():
            assert re.match(r"^[a-z]+ +\| ", line), f"an unnamed line: {line!r}"

        # Ctrl-C: everything stops, the flow runner before the Prefect server.
        stack.launcher.send_signal(signal.SIGINT)
        assert stack.launcher.wait(90) == 0
        assert "everything stopped" in stack.output()
        own = (stack.state / "supervisord.log").read_text()
        assert own.index("stopped: deployments") < own.index("stopped: prefect")
        time.sleep(0.5)
        assert not any(stack.pid(name) for name in PROGRAMS)
