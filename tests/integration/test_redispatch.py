"""relay-poll's re-dispatch: backs off while nobody stores an event, never gives it up, and
stops only on evidence that the assignment consumer dead-lettered the relay's own message."""

from __future__ import annotations

import json
import logging

from common import resources
from common.adapters import broker
from common.resources import assignment_connection, publisher, relay_connection
from common.services.relay import redispatch_lost, relay_pending
from tests import helpers
from tests.integration.test_relay import insert
from tests.processes import eventually, running


def fast(settings):
    return settings.model_copy(update={"REDISPATCH_AFTER_SECONDS": 1,
                                       "REDISPATCH_MAX_SECONDS": 8})


def redispatch(settings) -> int:
    with (relay_connection(settings) as relay_conn,
          assignment_connection(settings) as assignment_conn,
          publisher(settings, "test-redispatch") as pub):
        return redispatch_lost(relay_conn, assignment_conn, pub, settings)


def dispatch(settings) -> int:
    with relay_connection(settings) as conn, publisher(settings, "test-relay") as pub:
        return relay_pending(conn, pub, settings)


def source(settings, event_id=None) -> dict:
    with relay_connection(settings) as conn:
        return conn.execute(
            "SELECT event_id, dispatch_count, dead_lettered_at, dead_letter_reason,"
            " extract(epoch FROM next_redispatch_at - dispatched_at) AS wait"
            " FROM events WHERE event_id = coalesce(%s, event_id)", (event_id,)).fetchone()


def make_due(settings) -> None:
    """Move the clock instead of sleeping: every waiting event is due now."""
    with relay_connection(settings) as conn:
        conn.execute("UPDATE events SET next_redispatch_at = now() - interval '1 ms',"
                     " dispatched_at = dispatched_at - interval '1 hour'"
                     " WHERE next_redispatch_at IS NOT NULL")


def test_an_event_nobody_stores_is_re_dispatched_for_ever_with_growing_gaps(settings):
    settings = fast(settings)
    insert(settings, 1)
    assert dispatch(settings) == 1
    waits = [source(settings)["wait"]]
    for _ in range(6):
        assert redispatch(settings) == 0, "re-dispatched before it was due"
        make_due(settings)
        assert redispatch(settings) == 1, "an event that may be valid was given up"
        waits.append(source(settings)["wait"])
    assert [round(w) for w in waits] == [1, 2, 4, 8, 8, 8, 8]
    row = source(settings)
    assert row["dispatch_count"] == 7 and row["dead_lettered_at"] is None


def test_an_old_event_the_consumer_dead_letters_is_never_re_dispatched_again(settings, caplog):
    with relay_connection(settings) as conn:  # a row from before the source rules
        conn.execute("ALTER TABLE events DROP CONSTRAINT events_location_length")
    insert(settings, 2)
    with relay_connection(settings) as conn:
        bad, good = (r["event_id"] for r in conn.execute(
            "SELECT event_id FROM events ORDER BY event_id").fetchall())
        conn.execute("UPDATE events SET location = '' WHERE event_id = %s", (bad,))
    # A forged message naming the good event, with other contents: no evidence against it.
    forged = json.dumps({"eventId": str(good), "region": "MARS"}).encode()
    helpers.publish_raw(settings, broker.OUTBOUND, [forged])
    assert dispatch(settings) == 2
    conn = resources.assignment_connection(settings, autocommit=True)
    with running(settings, "assignment") as procs:
        eventually(lambda: conn.execute("SELECT count(*) AS n FROM rejected_events")
                   .fetchone()["n"] == 2, message="both refusals recorded")
        eventually(lambda: conn.execute("SELECT count(*) AS n FROM dedup_events")
                   .fetchone()["n"] == 1, message="the good event stored")
        assert all(p.poll() is None for p in procs)
    conn.execute("DELETE FROM dedup_events")  # the good one is "lost": it must go again
    make_due(settings)
    with caplog.at_level(logging.WARNING, logger="common.services.relay"):
        assert redispatch(settings) == 1
    assert source(settings, good)["dead_lettered_at"] is None
    refused = source(settings, bad)
    assert refused["dead_lettered_at"] is not None and "location" in refused["dead_letter_reason"]
    assert any(str(bad) in r.getMessage() and "dead-lettered" in r.getMessage()
               for r in caplog.records)
    make_due(settings)
    assert redispatch(settings) == 1  # the good one again; the refused one never
    assert source(settings, bad)["dispatch_count"] == 1
    # Someone replays the dead letter and it is stored after all: nothing breaks.
    conn.execute("INSERT INTO dedup_events (event_id) VALUES (%s), (%s)", (bad, good))
    make_due(settings)
    assert redispatch(settings) == 0
