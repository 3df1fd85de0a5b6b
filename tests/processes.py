"""Running the real long-running processes from tests, and waiting for what they do."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common.settings import Settings
from tests import servers

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def running(settings: Settings, *names: str, copies: int = 1, logs=None, **env):
    """Start `python -m consumers NAME` (copies of each) with these settings; stop them after.

    Their logs go to `logs` (a file object; default: a temporary file each, printed if the
    test fails, so a chatty process never blocks on a full pipe).
    """
    environment = servers.settings_env(settings)
    # Tests never squat the real metrics ports (9101-9104); a test that wants them says so.
    environment.setdefault("METRICS_PORT", "0")
    environment.update({k: str(v) for k, v in env.items()})
    environment["PYTHONPATH"] = str(ROOT)
    stack = contextlib.ExitStack()
    files = [] if logs is not None else [
        stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - closed by the stack
        for _ in range(len(names) * copies)
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "consumers", name],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=logs if logs is not None else files[i * copies + k],
        )
        for i, name in enumerate(names)
        for k in range(copies)
    ]
    try:
        yield procs
    except BaseException:
        _show_logs(names, copies, files)
        raise
    finally:
        for proc in procs:
            stop(proc)
        stack.close()


def _show_logs(names, copies: int, files) -> None:
    for index, f in enumerate(files):
        f.seek(0)
        tail = f.read()[-4000:].decode("utf-8", "replace")
        print(f"--- log of consumers {names[index // copies]} (copy {index % copies}):\n{tail}")


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def eventually(check, timeout: float = 60, interval: float = 0.1, message: str = ""):
    """Poll `check` until it returns something truthy; fail after `timeout` seconds.

    A bound on waiting, not a speed assertion: generous on purpose for shared machines.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {message or check} (last: {last!r})")


def pid_alive(proc: subprocess.Popen) -> bool:
    return proc.poll() is None and os.path.exists(f"/proc/{proc.pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving_api(settings: Settings, logs, startup_timeout: float = 60):
    """The HTTP API under uvicorn, as `make up` runs it, on a free port; yields its URL."""
    port = free_port()
    environment = servers.settings_env(settings)
    environment["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "common.api.app:app", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, env=environment, stdout=logs, stderr=logs,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _answers(url), timeout=startup_timeout,
                   message="the API answers /health")
        yield url
    finally:
        stop(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
