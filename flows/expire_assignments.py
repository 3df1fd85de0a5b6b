"""Prefect flow `expire-assignments`: stale live work released and routed (EXPIRED_EVENT_CRON)."""

from __future__ import annotations

from prefect import flow

from common.adapters.presence import Presence
from common.resources import assignment_connection, redis_client
from common.services import job_reports
from common.services.releases import expire_assignments as expire
from common.settings import load_settings
from flows import reports


@reports.job
def release_stale() -> tuple[dict, list]:
    settings = load_settings()
    with assignment_connection(settings, autocommit=True) as conn:
        since = job_reports.database_now(conn)
        report = expire(conn, Presence(redis_client(settings), settings), settings)
        per_operator = job_reports.released_per_operator(conn, "expire-assignments", since)
    return report, per_operator


@flow(name="expire-assignments", log_prints=True)
def expire_assignments() -> dict[str, int]:
    """Release pending assignments older than ASSIGNMENT_EXPIRY_MINUTES; route them again."""
    report, per_operator = release_stale()
    print(f"expire-assignments: released {report['released']}, assigned {report['assigned']}")
    reports.publish("expire-assignments", report,
                    {"Released per operator": (["user id", "username", "released"],
                                               per_operator)},
                    note="Pending assignments older than ASSIGNMENT_EXPIRY_MINUTES, released "
                         "(reason `expired`) and routed again.")
    return report
