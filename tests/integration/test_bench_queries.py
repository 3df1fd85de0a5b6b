"""`make bench-queries` (bench/queries.py) on a small copy of its data: every statement of the
catalogue is the application's current SQL, runs against the current schema under EXPLAIN
ANALYZE, and the data builder gives the reads something to find. No time is asserted: speed
lives in the benchmark."""

from __future__ import annotations

import io

from bench import queries, queries_data

# Reads that find nothing would measure nothing: the builder must give them rows.
MUST_FIND = {
    "relay.CLAIM", "relay.CLAIM_UNCONFIRMED", "assignment_db.draw_waiting (region)",
    "assignment_db.draw_waiting (global)", "sessions.authenticate", "sessions.heartbeat",
    "decisions.list_assignments", "decisions.decide (read)", "outbox.finish #1",
    "outbox.publish_decided (sweep)", "assignment_db.live_counts (resync)",
    "inbound.apply_decisions", "retention._OLD_DECIDED (29 d)",
}


def test_every_statement_runs_on_the_bench_data(settings):
    queries_data.fill(settings, 20_000, verbose=False)
    plans = io.StringIO()

    results = queries.measure_all(settings, runs=1, batch=5, plans=plans)

    names = [m.query.name for m in results]
    assert len(names) == len(set(names))
    kinds = {m.query.kind for m in results}
    assert kinds == set(queries.KINDS)
    found = {m.query.name: m.rows for m in results}
    assert {name for name in MUST_FIND if not found.get(name)} == set()
    # each retention delete ran after its children's, so none broke a foreign key, and the
    # plans file names every statement
    assert sum(1 for name in names if name.startswith("retention delete ")) == 5
    text = plans.getvalue()
    assert all(f"--- {name} (" in text for name in names)


def test_capture_records_what_the_function_sends():
    calls = queries.capture(queries.db.lock_stale_assignments, 15, 10)

    assert len(calls) == 1
    sql, params = calls[0]
    assert "FOR UPDATE SKIP LOCKED" in sql
    assert params == [900, 10]


def test_new_objects_are_read_from_the_migrations_numbered_040_to_049():
    found = queries.new_objects()

    assert ("STATISTICS", "assignments_status_deleted_stats") in found["assignment"]
    assert ("INDEX", "outbox_not_finished_idx") in found["assignment"]
