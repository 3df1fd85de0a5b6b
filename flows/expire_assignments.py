"""Prefect flow `expire-assignments`: stale live work released and routed (EXPIRED_EVENT_CRON)."""

from __future__ import annotations

from prefect import flow

from common.adapters.presence import Presence
from common.resources import assignment_connection, redis_client
from common.services.releases import expire_assignments as expire
from common.settings import load_settings


@flow(name="expire-assignments", log_prints=True)
def expire_assignments() -> dict[str, int]:
    """Release pending assignments older than ASSIGNMENT_EXPIRY_MINUTES; route them again."""
    settings = load_settings()
    with assignment_connection(settings, autocommit=True) as conn:
        report = expire(conn, Presence(redis_client(settings), settings), settings)
    print(f"expire-assignments: released {report['released']}, assigned {report['assigned']}")
    return report
