"""Generate random events into relay_service.events, as a producer would.

`generate_events` is the use case, called by the Prefect flow `generate-events`, by
`make generate N=...` and by `python -m common.services.generator N`.
"""

from __future__ import annotations

import logging
import random
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from common.domain.events import COLUMNS, count_refusal, describe, random_event
from common.settings import load_settings

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000
# Up to this many events, each one is reported; above it, progress per batch.
REPORT_EACH_UP_TO = 20
_COPY = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"


class CountRefused(ValueError):
    """The requested count is not a positive integer within GENERATE_MAX_COUNT."""


def generate_events(
    conn: psycopg.Connection,
    count: int,
    rng: random.Random | None = None,
    report: Callable[[str], None] = log.info,
    maximum: int | None = None,
    tally: Counter | None = None,
) -> int:
    """Insert `count` random events with COPY, one transaction per batch. Returns count.

    Refuses a bad count (CountRefused, nothing inserted) before touching the database.
    `tally`, if given, counts the inserted events per (region, severity).
    """
    reason = count_refusal(count, maximum if maximum is not None else sys.maxsize)
    if reason:
        raise CountRefused(reason)
    rng = rng or random.Random()
    done = 0
    while done < count:
        batch = random_events(min(BATCH_SIZE, count - done), rng)
        insert_events(conn, batch)
        done += len(batch)
        if tally is not None:
            tally.update((event["region"], event["severity"]) for event in batch)
        _report(report, batch, done, count)
    return done


def random_events(count: int, rng: random.Random | None = None) -> list[dict]:
    """`count` new random events, created now (not inserted)."""
    rng = rng or random.Random()
    return [random_event(rng, datetime.now(UTC)) for _ in range(count)]


def insert_events(conn: psycopg.Connection, events: list[dict]) -> None:
    """COPY events, BATCH_SIZE per transaction (each commit's insert trigger wakes the
    relay)."""
    for start in range(0, len(events), BATCH_SIZE):
        with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY) as copy:
            for event in events[start : start + BATCH_SIZE]:
                copy.write_row(tuple(event[column] for column in COLUMNS))


def _report(report: Callable[[str], None], batch: list[dict], done: int, count: int) -> None:
    if count <= REPORT_EACH_UP_TO:
        for event in batch:
            report(f"inserted event {describe(event)}")
    else:
        report(f"inserted {done}/{count} events")


def main(argv: list[str] | None = None) -> int:
    """`python -m common.services.generator N`: insert N events or refuse in one line."""
    argv = sys.argv[1:] if argv is None else argv
    settings = load_settings()
    logging.basicConfig(level=settings.LOG_LEVEL, format="%(message)s")
    if len(argv) != 1:
        print("usage: python -m common.services.generator COUNT", file=sys.stderr)
        return 2
    reason = count_refusal(argv[0], settings.GENERATE_MAX_COUNT)
    if reason:
        print(f"refused: {reason}", file=sys.stderr)
        return 2
    count = int(argv[0])
    with psycopg.connect(settings.relay_dsn) as conn:
        generate_events(conn, count, report=print, maximum=settings.GENERATE_MAX_COUNT)
    print(f"generated {count} events into {settings.POSTGRES_DB_RELAY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
