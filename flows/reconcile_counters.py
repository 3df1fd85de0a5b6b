"""Prefect flow `reconcile-counters`: Redis counters and availability := PostgreSQL."""

from __future__ import annotations

from prefect import flow

from common.adapters.presence import Presence
from common.resources import assignment_connection, redis_client
from common.services.reconcile import reconcile_counters as reconcile
from common.settings import load_settings


@flow(name="reconcile-counters", log_prints=True)
def reconcile_counters() -> dict[str, int]:
    """Rebuild `user_assignments` and `active_users` from PostgreSQL; report corrections."""
    settings = load_settings()
    with assignment_connection(settings, autocommit=True) as conn:
        report = reconcile(conn, Presence(redis_client(settings), settings))
    print(f"reconcile-counters: reconciled {report['counters_corrected']} counter(s), "
          f"{report['availability_corrected']} availability entr(ies)")
    return report
