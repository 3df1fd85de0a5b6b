"""Prefect flow `prune-old-data`: what only grows, deleted beyond RETENTION_DAYS (PRUNE_CRON)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from prefect import flow

from common.resources import assignment_connection, relay_connection
from common.services import retention
from common.settings import load_settings
from flows import reports


@reports.job
def prune(days: int | None = None) -> tuple[str, dict[str, Counter]]:
    settings = load_settings()
    days = days or settings.RETENTION_DAYS
    before = retention.cutoff(datetime.now(UTC), days)
    batch = settings.RETENTION_BATCH_SIZE
    with assignment_connection(settings, autocommit=True) as conn:
        assignment = retention.prune_assignment_service(conn, before, batch)
    with relay_connection(settings, autocommit=True) as conn:
        relay = retention.prune_relay_service(conn, before, batch)
    return before.isoformat(timespec="seconds"), {settings.POSTGRES_DB_ASSIGNMENT: assignment,
                                                  settings.POSTGRES_DB_RELAY: relay}


@flow(name="prune-old-data", log_prints=True)
def prune_old_data(days: int | None = None) -> dict[str, int]:
    """Delete decided events, finished outbox rows, ended sessions, history and dedup rows
    older than `days` (default RETENTION_DAYS) from both databases."""
    before, deleted = prune(days)
    rows = [(database, table, n) for database, tables in deleted.items()
            for table, n in sorted(tables.items())]
    total = sum(n for *_, n in rows)
    print(f"prune-old-data: deleted {total} row(s) older than {before}")
    reports.publish("prune-old-data", {"deleted": total, "older than": before},
                    {"Rows deleted per table": (["database", "table", "rows"], rows)},
                    note="Only what is finished: decided events whose decision reached the "
                         "source, with their rows; nothing undecided, live or waiting.")
    return {f"{database}.{table}": n for database, table, n in rows}
