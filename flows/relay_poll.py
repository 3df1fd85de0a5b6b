"""Prefect flow `relay-poll`: the relay's safety sweep (every RELAY_POLL_SECONDS)."""

from __future__ import annotations

from prefect import flow

from common.resources import assignment_connection, publisher, relay_connection
from common.services.relay import redispatch_lost, relay_pending
from common.settings import load_settings
from flows import reports


@reports.job
def sweep() -> dict[str, int]:
    settings = load_settings()
    with (
        relay_connection(settings) as relay_conn,
        assignment_connection(settings) as assignment_conn,
        publisher(settings, f"relay-poll:{settings.NAMESPACE or '-'}") as pub,
    ):
        dispatched = relay_pending(relay_conn, pub, settings)
        redispatched = redispatch_lost(relay_conn, assignment_conn, pub, settings)
    return {"dispatched": dispatched, "redispatched": redispatched}


@flow(name="relay-poll", log_prints=True)
def relay_poll() -> dict[str, int]:
    """Dispatch what the long-running relay missed, then re-dispatch what was lost."""
    report = sweep()
    print(f"relay-poll: dispatched {report['dispatched']}, "
          f"re-dispatched {report['redispatched']}")
    reports.publish("relay-poll", report,
                    note="Undispatched events published to events.outbound; events dispatched "
                         "long ago but never stored by the assignment service re-dispatched.")
    return report
