"""`python -m deployments.serve`: serve the seven Prefect deployments of DESIGN.md.

One runner process registers every deployment with its schedule from the settings and runs
their flow runs as bounded subprocesses. `make up` and the compose file start it once the
Prefect server answers (PREFECT_API_URL). Each deployment is named after its flow, so
`prefect deployment run generate-events/generate-events --param count=100` works.

It waits for the Prefect server at start, then watches it: while the server answers, the
runner beats its heartbeat (`deployments`); when it stops answering for a few checks in a row
the runner exits 3, since a `serve` whose server is gone hangs (FIELD-NOTES.md), and its
supervisor starts it again, to wait for the server's return.

A cron that does not parse stops start-up with one line naming its variable (the settings
refuse it). A flow module that is missing stops start-up naming the module: nothing is left
out silently.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from common import heartbeat, logs
from common.production import refuse_unsafe_start
from common.settings import Settings, load_settings

# reconcile-counters has no variable of its own in DESIGN.md; consumers also reconcile at
# start, so this sweep only catches drift. Five minutes keeps it cheap.
RECONCILE_SECONDS = 300
# At most this many flow runs at once. Each is a ~90 MB subprocess; an unbounded runner
# piled up ninety of them on a 2-core machine (FIELD-NOTES.md).
RUN_LIMIT = 4
# The Prefect server is asked for its health this often, each answer awaited this long;
# this many failures in a row end the runner (a refused connection at once: nothing
# listens), and at start it waits START_WAIT_SECONDS for the server before giving up.
# Generous: on a crowded machine a healthy server can take seconds to answer.
WATCH_SECONDS = 2.0
WATCH_TIMEOUT = 5.0
WATCH_FAILURES = 4
START_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class Job:
    """One deployment: where its flow lives and how its schedule is read from settings."""

    name: str  # flow name = deployment name (DESIGN.md)
    module: str
    attribute: str
    schedule: Callable[[Settings], dict[str, Any]]  # keywords for Flow.to_deployment

    @property
    def entrypoint(self) -> str:
        return f"{self.module.replace('.', '/')}.py:{self.attribute}"


JOBS: tuple[Job, ...] = (
    Job("relay-poll", "flows.relay_poll", "relay_poll",
        lambda s: {"interval": s.RELAY_POLL_SECONDS}),
    Job("expire-assignments", "flows.expire_assignments", "expire_assignments",
        lambda s: {"cron": s.EXPIRED_EVENT_CRON}),
    Job("cleanup-inactive-users", "flows.cleanup_inactive_users", "cleanup_inactive_users",
        lambda s: {"cron": s.INACTIVE_USER_CRON}),
    Job("check-reviewed", "flows.check_reviewed", "check_reviewed",
        lambda s: {"cron": s.CHECK_REVIEWED_CRON}),
    Job("reconcile-counters", "flows.reconcile_counters", "reconcile_counters",
        lambda s: {"interval": RECONCILE_SECONDS}),
    Job("prune-old-data", "flows.prune_old_data", "prune_old_data",
        lambda s: {"cron": s.PRUNE_CRON}),
    # On demand only: from the UI or `prefect deployment run`.
    Job("generate-events", "flows.generate_events", "generate_events", lambda s: {}),
)


class MissingFlow(Exception):
    """A job's flow module or flow object cannot be loaded; the message says which."""


def load_flow(job: Job):
    """Import the flow object of `job` and check that its name is the deployment's."""
    try:
        module = importlib.import_module(job.module)
    except ImportError as error:
        raise MissingFlow(f"{job.name}: cannot import {job.module}: {error}") from error
    flow = getattr(module, job.attribute, None)
    if flow is None:
        raise MissingFlow(f"{job.name}: {job.module} has no attribute {job.attribute!r}")
    if getattr(flow, "name", None) != job.name:
        raise MissingFlow(
            f"{job.name}: {job.module}.{job.attribute} is not the flow {job.name!r} "
            f"(its name is {getattr(flow, 'name', None)!r})"
        )
    return flow


def build_deployments(settings: Settings, jobs: Iterable[Job] = JOBS) -> list:
    """The RunnerDeployments of `jobs`, schedules from `settings`. Nothing is contacted."""
    return [
        load_flow(job).to_deployment(name=job.name, **job.schedule(settings)) for job in jobs
    ]


def select(names: Iterable[str]) -> list[Job]:
    """The jobs named, in table order; an unknown name is refused."""
    wanted = set(names)
    unknown = wanted - {job.name for job in JOBS}
    if unknown:
        raise MissingFlow(f"unknown deployment(s): {', '.join(sorted(unknown))}")
    return [job for job in JOBS if job.name in wanted]


def with_defaults(settings: Settings, defaults: list[str]) -> Settings:
    """Apply `NAME=VALUE` defaults for variables set neither in the environment nor `.env`.

    `make up` uses this to run expiry and inactive cleanup every minute unless the user
    chose otherwise (DESIGN.md).
    """
    overrides = {}
    for item in defaults:
        name, sep, value = item.partition("=")
        if not sep or name not in Settings.model_fields:
            raise SystemExit(f"--default expects NAME=VALUE with a setting's NAME: {item!r}")
        if name not in settings.model_fields_set:
            overrides[name] = value
    return load_settings(**overrides) if overrides else settings


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__)
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="serve only these deployments (default: all seven)")
    parser.add_argument("--default", action="append", default=[], metavar="NAME=VALUE",
                        help="value of a setting when neither the environment nor .env sets it")
    parser.add_argument("--limit", type=int, default=RUN_LIMIT,
                        help=f"flow runs at once (default {RUN_LIMIT})")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = with_defaults(load_settings(), args.default)
    refuse_unsafe_start(settings)
    try:
        jobs = select(args.only) if args.only else list(JOBS)
        deployments = build_deployments(settings, jobs)
    except MissingFlow as error:
        print(f"deployments.serve: {error}", file=sys.stderr)
        return 1
    from prefect import serve
    from prefect.settings import get_current_settings

    logs.configure("deployments", settings)  # after Prefect's import, which sets up its own
    api = get_current_settings().api.url
    # Without PREFECT_API_URL Prefect runs a temporary server: nothing to watch or beat for.
    if api is not None:
        health = f"{str(api).rstrip('/')}/health"
        print(f"deployments.serve: waiting for the Prefect server at {health}", flush=True)
        if not wait_for_server(health, START_WAIT_SECONDS):
            print(f"deployments.serve: the Prefect server at {health} did not answer "
                  f"within {START_WAIT_SECONDS:g} s", file=sys.stderr)
            return 3
        heartbeat.start(settings, "deployments")
        threading.Thread(target=watch_server, args=(health,), name="prefect-watch",
                         daemon=True).start()
    print(f"deployments.serve: serving {len(deployments)} deployments", flush=True)
    serve(*deployments, limit=max(1, args.limit))
    return 0


def server_state(health: str) -> str:
    """`ok`, `refused` (nothing listens: the server is gone or restarting) or `failed`."""
    try:
        return "ok" if httpx.get(health, timeout=WATCH_TIMEOUT).status_code == 200 else "failed"
    except httpx.ConnectError:
        return "refused"
    except httpx.HTTPError:
        return "failed"


def wait_for_server(health: str, timeout: float) -> bool:
    """Called by main before serving: poll the server's health until it answers."""
    deadline = time.monotonic() + timeout
    while server_state(health) != "ok":
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def watch_server(health: str) -> None:
    """Runs in a thread while `serve` runs: beat while the server answers. Leave when nothing
    listens any more (the server restarts: this runner must too), or after WATCH_FAILURES
    failed checks in a row; os._exit, since `serve` would hang."""
    failures = 0
    while failures < WATCH_FAILURES:
        time.sleep(WATCH_SECONDS)
        state = server_state(health)
        if state == "ok":
            failures = 0
            heartbeat.tick()
        else:
            failures = WATCH_FAILURES if state == "refused" else failures + 1
    print(f"deployments.serve: the Prefect server at {health} is gone; exiting for the "
          "supervisor to restart the runner", file=sys.stderr, flush=True)
    os._exit(3)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
