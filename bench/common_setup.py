"""A benchmark's own namespace and databases on the local servers, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
import uuid

from common.adapters.migrations import migrate
from common.settings import Settings
from tests.processes import running
from tests.servers import tear_down


@contextlib.contextmanager
def bench_settings(name: str, **overrides):
    """Fresh databases and NAMESPACE for one benchmark; dropped when it ends."""
    run = f"{name}_{uuid.uuid4().hex[:6]}"
    settings = Settings(
        POSTGRES_DB_RELAY=f"bench_relay_{run}",
        POSTGRES_DB_ASSIGNMENT=f"bench_assignment_{run}",
        NAMESPACE=f"bench_{run}",
        **overrides,
    )
    migrate(settings)
    try:
        yield settings
    finally:
        tear_down(settings)


@contextlib.contextmanager
def processes(settings: Settings, *names: str):
    """Run `python -m consumers NAME` for each name, logs to this terminal (BENCH_LOG_LEVEL,
    default WARNING), and give them time to connect before the clock starts."""
    level = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    with running(settings, *names, logs=sys.stderr, LOG_LEVEL=level) as procs:
        time.sleep(2)
        yield procs


def median(values) -> float:
    return statistics.median(values) if values else float("nan")
