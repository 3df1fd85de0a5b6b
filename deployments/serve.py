"""`python -m deployments.serve`: serve the six Prefect deployments of DESIGN.md.

One runner process registers every deployment with its schedule from the settings and runs
their flow runs as bounded subprocesses. `make up` and the compose file start it once the
Prefect server answers (PREFECT_API_URL). Each deployment is named after its flow, so
`prefect deployment run generate-events/generate-events --param count=100` works.

A cron that does not parse stops start-up with one line naming its variable (the settings
refuse it). A flow module that is missing stops start-up naming the module: nothing is left
out silently.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from common import logs
from common.settings import Settings, load_settings

# reconcile-counters has no variable of its own in DESIGN.md; consumers also reconcile at
# start, so this sweep only catches drift. Five minutes keeps it cheap.
RECONCILE_SECONDS = 300
# At most this many flow runs at once. Each is a ~90 MB subprocess; an unbounded runner
# piled up ninety of them on a 2-core machine (FIELD-NOTES.md).
RUN_LIMIT = 4


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
                        help="serve only these deployments (default: all six)")
    parser.add_argument("--default", action="append", default=[], metavar="NAME=VALUE",
                        help="value of a setting when neither the environment nor .env sets it")
    parser.add_argument("--limit", type=int, default=RUN_LIMIT,
                        help=f"flow runs at once (default {RUN_LIMIT})")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = with_defaults(load_settings(), args.default)
    try:
        jobs = select(args.only) if args.only else list(JOBS)
        deployments = build_deployments(settings, jobs)
    except MissingFlow as error:
        print(f"deployments.serve: {error}", file=sys.stderr)
        return 1
    from prefect import serve

    logs.configure("deployments", settings)  # after Prefect's import, which sets up its own
    serve(*deployments, limit=max(1, args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
