"""The Prefect server of `make up`, back in a fraction of a second after a crash (issue 7).

`prefect server start` spends most of its start importing (4.6-5.2 s on a quiet 2-core
machine, 8-21 s under load; docs/decisions.md, "Restart times"), so a supervisor that
restarts it leaves the UI, the API and the flow runner without a server for that long. This
program pays the import once. It has two parts:

- the keeper (the process the supervisor runs) imports the server and builds its app, then
  forks a server from that state; when the server exits, the keeper forks the next one at
  once (with a back-off if they keep dying young), forever;
- the server (the forked child) runs the app's start-up (database, services) and serves
  HTTP on a socket bound with SO_REUSEPORT, then writes its pid to SERVER_PID_FILE.

If the keeper itself is killed, its server goes on serving. The supervisor starts a new
keeper, which imports, forks its own server on the same port (SO_REUSEPORT lets both
listen) and, once that one serves, the new server stops the old one (SIGTERM, found by the
pid file and checked by its command line). The port never stops answering. A server whose
keeper is gone and that nobody relieves within ORPHAN_SECONDS stops by itself, so a
`make up` stopped in that window leaves nothing behind for long.

SIGTERM or SIGINT to the keeper stops its server (SIGTERM, graceful), then the keeper.

    python -m deployments.prefect_server --host 127.0.0.1 --port 4200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
import time
from pathlib import Path

# A server that lived less than YOUNG_SECONDS died young. The first is forked again at once;
# each further one in a row waits twice as long as the last, from BACKOFF_FIRST up to
# BACKOFF_MAX seconds, so a server that cannot start does not spin.
YOUNG_SECONDS = 10.0
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0
# An orphaned server (its keeper killed) serves until the next keeper's server relieves it,
# or at most this long.
ORPHAN_SECONDS = 120.0
SERVER_PID_FILE = "prefect-server-child.pid"
MARK = "deployments.prefect_server"


def log(message: str) -> None:
    print(f"{MARK} [{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {MARK}", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    return parser.parse_args(argv)


def listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


def pid_file() -> Path:
    from prefect.settings import PREFECT_HOME

    return Path(PREFECT_HOME.value()) / SERVER_PID_FILE


def is_our_server(pid: int) -> bool:
    """Whether `pid` is a live server of this program (not a recycled pid of anything else)."""
    try:
        return MARK.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def relieve_previous(own: int) -> None:
    """Stop the server an earlier keeper left serving, then take its place in the pid file."""
    path = pid_file()
    try:
        previous = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        previous = 0
    if previous and previous != own and is_our_server(previous):
        log(f"serving; stopping the server {previous} that a killed keeper left running")
        with contextlib.suppress(ProcessLookupError):
            os.kill(previous, signal.SIGTERM)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{own}\n")


async def watch(server, keeper: int) -> None:
    """Once the server serves, relieve any predecessor; then stop by itself if orphaned
    longer than ORPHAN_SECONDS."""
    forked = time.monotonic()
    while not server.started:
        await asyncio.sleep(0.05)
    log(f"serving, {time.monotonic() - forked:.1f} s after the fork")
    relieve_previous(os.getpid())
    orphaned = None
    while not server.should_exit:
        await asyncio.sleep(1)
        if os.getppid() == keeper:
            continue
        orphaned = orphaned or time.monotonic()
        if time.monotonic() - orphaned > ORPHAN_SECONDS:
            log(f"no keeper relieved this server within {ORPHAN_SECONDS:.0f} s; stopping")
            server.should_exit = True


def serve(app, sock: socket.socket, keeper: int, log_level: str) -> None:
    """The child: run the app's lifespan and serve until told to stop."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, timeout_keep_alive=5)
    server = uvicorn.Server(config)

    async def main() -> None:
        watcher = asyncio.create_task(watch(server, keeper))
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    asyncio.run(main())


def keep(argv: list[str]) -> int:
    args = parse(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    started = time.monotonic()
    from prefect.server.api.server import create_app
    from prefect.settings import PREFECT_SERVER_LOGGING_LEVEL

    app = create_app(final=True, webserver_only=False)
    log_level = str(PREFECT_SERVER_LOGGING_LEVEL.value()).lower()
    sock = listening_socket(args.host, args.port)
    log(f"imported and built the app in {time.monotonic() - started:.1f} s; "
        f"serving on {args.host}:{args.port}")

    keeper = os.getpid()
    child = 0
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)

    young = 0  # servers in a row that died young
    # Move what the import built out of the collector's reach, so that a collection in a
    # server does not write to (and so copy) every page it shares with the keeper.
    gc.collect()
    gc.freeze()
    while not stopping:
        child = os.fork()
        if child == 0:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            try:
                serve(app, sock, keeper, log_level)
                code = 0
            except BaseException as error:  # noqa: BLE001 - the child reports and exits
                log(f"server failed: {error!r}")
                code = 1
            os._exit(code)
        forked = time.monotonic()
        log(f"server {child} forked")
        status = wait_for(child)
        lived = time.monotonic() - forked
        if stopping:
            break
        young = young + 1 if lived < YOUNG_SECONDS else 0
        backoff = pause_before_fork(young)
        log(f"server {child} ended ({describe(status)}) after {lived:.1f} s; "
            f"forking the next in {backoff:.1f} s")
        time.sleep(backoff)
    log("stopped")
    return 0


def pause_before_fork(young: int) -> float:
    """Seconds to wait before the next fork after `young` servers in a row died young."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (young - 2)) if young > 1 else 0.0


def wait_for(pid: int) -> int:
    """The child's wait status (os.waitpid retries by itself when a signal interrupts it)."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.waitstatus_to_exitcode(status)}"


if __name__ == "__main__":
    sys.exit(keep(sys.argv[1:]))
