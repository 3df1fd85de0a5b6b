"""The parts of a dead letter that need no broker: its headers and its one-line reason.

Called by consumers/runner.py for every message it dead-letters, and to judge a failure.
"""

from __future__ import annotations

import psycopg

from common.messages import BadMessage, one_line

DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError)

# Header values copied from a bad message to its dead letter: only what re-encodes safely.
HEADER_TYPES = (str, bytes, bool, type(None))
HEADER_MAX_CHARS = 1000


def dead_letter_headers(reason: str, kind: str, queue: str) -> dict:
    """The headers every dead letter carries: why, the kind of why, and where from."""
    return {"x-death-reason": one_line(reason, HEADER_MAX_CHARS), "x-death-kind": kind,
            "x-original-queue": queue}


def safe_headers(headers: dict) -> dict:
    """The original headers that re-encode safely (short strings, bytes, bools, 64-bit
    integers); the rest are dropped, so an odd header cannot block its dead letter."""
    kept = {}
    for key, value in headers.items():
        if not isinstance(key, str) or len(key.encode("utf-8", "replace")) > 255:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            if -(2**63) <= value < 2**63:
                kept[key] = value
        elif isinstance(value, HEADER_TYPES) and len(value or "") <= HEADER_MAX_CHARS:
            kept[key] = value
    return kept


def summary(prefix: str, error: BaseException) -> str:
    """`prefix: Type: first line of the message`, bounded: for reasons and log lines."""
    try:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    except Exception:  # noqa: BLE001 - an exception whose str() fails
        text = ""
    head = f"{prefix}: " if prefix else ""
    return one_line(f"{head}{type(error).__name__}: {text}" if text
                    else f"{head}{type(error).__name__}")


def verdict(error: Exception, proven: bool, last: bool, limit: int) -> tuple[str, str] | None:
    """(reason, kind) of the dead letter of a message whose handler raised `error` when
    handled alone; None: requeue it. `proven`: batch-mates succeeded beside it; `last`: its
    last delivery before the queue's delivery limit (`limit`)."""
    if isinstance(error, BadMessage):
        # Found bad only against the database (e.g. an ack for an unknown assignment).
        return error.reason, error.kind
    if isinstance(error, DATA_ERRORS):
        return summary("rejected by the database", error), "database_refused"
    if proven:
        return summary("failed alone while its batch-mates succeeded", error), "handler_failed"
    if last:
        return summary(f"failed on each of {limit} deliveries", error), "handler_failed"
    return None
