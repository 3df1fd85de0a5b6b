"""Prefect flow `reconcile-counters`: Redis counters and availability := PostgreSQL."""

from __future__ import annotations

from prefect import flow

from common.adapters.presence import Presence
from common.resources import assignment_connection, redis_client
from common.services import reconcile
from common.settings import load_settings
from flows import reports


@reports.job
def rebuild() -> tuple[dict, list[tuple]]:
    settings = load_settings()
    with assignment_connection(settings, autocommit=True) as conn:
        return reconcile.rebuild(conn, Presence(redis_client(settings), settings))


@flow(name="reconcile-counters", log_prints=True)
def reconcile_counters() -> dict[str, int]:
    """Rebuild `user_assignments` and `active_users` from PostgreSQL; report corrections."""
    report, corrected = rebuild()
    print(f"reconcile-counters: reconciled {report['counters_corrected']} counter(s), "
          f"{report['availability_corrected']} availability entr(ies)")
    reports.publish("reconcile-counters", report,
                    {"Counters corrected": (["user id", "Redis had", "PostgreSQL holds"],
                                            corrected)},
                    note="Redis counters and availability rewritten from PostgreSQL.")
    return report
