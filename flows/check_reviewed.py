"""Prefect flow `check-reviewed`: the outbox sweep (CHECK_REVIEWED_CRON)."""

from __future__ import annotations

from prefect import flow

from common.resources import assignment_connection, publisher
from common.services.outbox import publish_decided
from common.settings import load_settings


@flow(name="check-reviewed", log_prints=True)
def check_reviewed() -> dict[str, int]:
    """Publish every unfinished decision not published within OUTBOX_REPUBLISH_SECONDS."""
    settings = load_settings()
    with (
        assignment_connection(settings, autocommit=True) as conn,
        publisher(settings, f"check-reviewed:{settings.NAMESPACE or '-'}") as pub,
    ):
        relayed = publish_decided(conn, pub, settings)
    print(f"check-reviewed: relayed {relayed} decision(s)")
    return {"relayed": relayed}
