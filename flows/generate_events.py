"""Prefect flow `generate-events`: insert `count` random events (default 10)."""

from __future__ import annotations

from collections import Counter

from prefect import flow

from common.resources import relay_connection
from common.services import generator
from common.settings import load_settings
from flows import reports


# No retries: a retry after a partial insert would insert more than `count`.
@flow(name="generate-events", log_prints=True)
def generate_events(count: int = 10) -> int:
    """Insert `count` random events into relay_service.events; refuse a bad count."""
    settings = load_settings()
    tally: Counter = Counter()
    with relay_connection(settings) as conn:
        inserted = generator.generate_events(
            conn, count, report=print, maximum=settings.GENERATE_MAX_COUNT, tally=tally
        )
    print(f"generated {inserted} events")
    reports.publish("generate-events", {"generated": inserted},
                    {"Events per region and severity": (
                        ["region", "severity", "events"],
                        [(region, severity, n) for (region, severity), n in sorted(tally.items())],
                    )})
    return inserted
