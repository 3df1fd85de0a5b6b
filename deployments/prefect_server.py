"""`python -m deployments.prefect_server`: `prefect server start` for `make up`, stopped last.

honcho stops every process of the Procfile at once on Ctrl-C. The deployments runner pauses
its schedules through the server on its way out (3-5 s), and a runner whose server is gone
hangs (FIELD-NOTES.md). So this wrapper runs the server in a session of its own, out of reach
of honcho's signal, and on SIGTERM or SIGINT gives the runner `STOP_GRACE` seconds before
stopping the server. The server is killed with the wrapper whatever kills it
(PR_SET_PDEATHSIG), so nothing outlives `make up`. Arguments go to `prefect server start`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

# Seconds the server outlives the stop signal. honcho SIGKILLs what is left after 5 s.
STOP_GRACE = 3.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the wrapper dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(server: subprocess.Popen) -> None:
    """Give the runner its grace, then stop the server's process group politely, then not."""
    try:
        server.wait(timeout=STOP_GRACE)
        return
    except subprocess.TimeoutExpired:
        pass
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=1.5)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main(argv: list[str]) -> int:
    if os.environ.get("PREFECT_HOME"):
        # Prefect creates its home without parents, and fails on a fresh clone's ./var/prefect.
        os.makedirs(os.environ["PREFECT_HOME"], exist_ok=True)
    stopping = []

    def request_stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    command = [sys.executable, "-m", "prefect", "server", "start", *argv]
    server = subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent)
    while not stopping:
        try:
            return server.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
    print(f"stopping the Prefect server in {STOP_GRACE:g} s", flush=True)
    _stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
