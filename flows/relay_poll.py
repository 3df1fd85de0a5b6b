"""Prefect flow `relay-poll`: the relay's safety sweep (every RELAY_POLL_SECONDS)."""

from __future__ import annotations

from prefect import flow

from common.resources import assignment_connection, publisher, relay_connection
from common.services.relay import redispatch_lost, relay_pending
from common.settings import load_settings


@flow(name="relay-poll", log_prints=True)
def relay_poll() -> dict[str, int]:
    """Dispatch what the long-running relay missed, then re-dispatch what was lost."""
    settings = load_settings()
    with (
        relay_connection(settings) as relay_conn,
        assignment_connection(settings) as assignment_conn,
        publisher(settings, f"relay-poll:{settings.NAMESPACE or '-'}") as pub,
    ):
        dispatched = relay_pending(relay_conn, pub, settings)
        redispatched = redispatch_lost(relay_conn, assignment_conn, pub, settings)
    print(f"relay-poll: dispatched {dispatched}, re-dispatched {redispatched}")
    return {"dispatched": dispatched, "redispatched": redispatched}
