"""Prefect flow `cleanup-inactive-users`: work of operators with no live session released."""

from __future__ import annotations

from prefect import flow

from common.adapters.presence import Presence
from common.resources import assignment_connection, redis_client
from common.services.releases import cleanup_inactive_users as cleanup
from common.settings import load_settings


@flow(name="cleanup-inactive-users", log_prints=True)
def cleanup_inactive_users() -> dict[str, int]:
    """Release the live work of operators without a live session; prune their presence."""
    settings = load_settings()
    with assignment_connection(settings, autocommit=True) as conn:
        report = cleanup(conn, Presence(redis_client(settings), settings), settings)
    print(f"cleanup-inactive-users: {report['inactive']} inactive, "
          f"released {report['released']}, assigned {report['assigned']}")
    return report
