"""Prefect flow `check-reviewed`: the outbox sweep (CHECK_REVIEWED_CRON)."""

from __future__ import annotations

from prefect import flow

from common.resources import assignment_connection, publisher
from common.services.outbox import publish_decided
from common.settings import load_settings
from flows import reports


@reports.job
def republish() -> int:
    settings = load_settings()
    with (
        assignment_connection(settings, autocommit=True) as conn,
        publisher(settings, f"check-reviewed:{settings.NAMESPACE or '-'}") as pub,
    ):
        return publish_decided(conn, pub, settings)


@flow(name="check-reviewed", log_prints=True)
def check_reviewed() -> dict[str, int]:
    """Publish every unfinished decision not published within OUTBOX_REPUBLISH_SECONDS."""
    relayed = republish()
    print(f"check-reviewed: relayed {relayed} decision(s)")
    reports.publish("check-reviewed", {"republished": relayed},
                    note="Decisions whose outbox row was not finished, published again to "
                         "events.inbound.")
    return {"relayed": relayed}
