"""Prefect flow `generate-events`: insert `count` random events (default 10)."""

from __future__ import annotations

from prefect import flow

from common.resources import relay_connection
from common.services import generator
from common.settings import load_settings


@flow(name="generate-events", log_prints=True)
def generate_events(count: int = 10) -> int:
    """Insert `count` random events into relay_service.events; refuse a bad count."""
    settings = load_settings()
    with relay_connection(settings) as conn:
        inserted = generator.generate_events(
            conn, count, report=print, maximum=settings.GENERATE_MAX_COUNT
        )
    print(f"generated {inserted} events")
    return inserted
