"""What every flow shares: its result as a Prefect artifact, and retries where they help.

A person opening a flow run in the Prefect UI sees, under Artifacts, a markdown report keyed
by the flow's name (the latest of each flow is also under Artifacts, by key): the counts of
what it did and a table of the details (released per operator, events per region and
severity, rows deleted per table).

The work of a flow runs in one task (`job`) that is retried only for a transient failure (a
server unreachable, a publish unconfirmed): a retry helps there. A bug or bad data fails at
once, and the flow run shows Failed with the error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

import psycopg
import redis
from pika.exceptions import AMQPError
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from common.adapters.broker import PublishError

TRANSIENT = (psycopg.OperationalError, redis.ConnectionError, redis.TimeoutError,
             PublishError, AMQPError, OSError)
RETRY_DELAYS = [5, 15, 30]


def retry_if_transient(_task, _task_run, state) -> bool:
    """Prefect asks this after a failed attempt: retry only a transient failure."""
    try:
        state.result()
    except TRANSIENT:
        return True
    except BaseException:  # noqa: BLE001 - anything else is not worth a retry
        return False
    return False


def job(fn: Callable) -> Callable:
    """The task that does a flow's work, retried for transient failures only."""
    return task(fn, name=fn.__name__.replace("_", "-"), retries=len(RETRY_DELAYS),
                retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_if_transient,
                cache_policy=NO_CACHE)


def publish(key: str, counts: Mapping[str, object],
            tables: Mapping[str, tuple[Sequence[str], Iterable[Sequence]]] | None = None,
            note: str = "") -> str:
    """Publish a flow run's report as a markdown artifact under `key`; returns the text.

    `counts` are the headline numbers; each of `tables` is (column names, rows)."""
    lines = [f"# {key}", "", note, "", "| what | count |", "|---|---:|"]
    lines += [f"| {name.replace('_', ' ')} | {value} |" for name, value in counts.items()]
    for title, (columns, rows) in (tables or {}).items():
        rows = list(rows)
        lines += ["", f"## {title}", ""]
        if not rows:
            lines.append("(none)")
            continue
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    text = "\n".join(line for line in lines if line is not None)
    create_markdown_artifact(markdown=text, key=key, description=f"What {key} did")
    return text


def _cell(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value).replace("|", "\\|")
