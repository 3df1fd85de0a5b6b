"""Prefect flow `cleanup-inactive-users`: work of operators with no live session released."""

from __future__ import annotations

from prefect import flow

from common.adapters.presence import Presence
from common.resources import assignment_connection, redis_client
from common.services import job_reports
from common.services.releases import cleanup_inactive_users as cleanup
from common.settings import load_settings
from flows import reports


@reports.job
def release_inactive() -> tuple[dict, list]:
    settings = load_settings()
    with assignment_connection(settings, autocommit=True) as conn:
        since = job_reports.database_now(conn)
        report = cleanup(conn, Presence(redis_client(settings), settings), settings)
        per_operator = job_reports.released_per_operator(conn, "cleanup-inactive-users", since)
    return report, per_operator


@flow(name="cleanup-inactive-users", log_prints=True)
def cleanup_inactive_users() -> dict[str, int]:
    """Release the live work of operators without a live session; prune their presence."""
    report, per_operator = release_inactive()
    print(f"cleanup-inactive-users: {report['inactive']} inactive, "
          f"released {report['released']}, assigned {report['assigned']}")
    reports.publish("cleanup-inactive-users", report,
                    {"Released per operator": (["user id", "username", "released"],
                                               per_operator)},
                    note="Operators without a live session: made unavailable, their pending "
                         "work released (reason `inactive`) and routed again.")
    return report
