"""Supervisor queries at volume: `python -m bench.bench_supervision`.

Builds once, in a database of its own (`bench_supervision`, kept between runs; `--rebuild`
starts over), a million events and a million assignments spread over 30 days, with their
history (two rows each); then runs every supervisor query (common/adapters/analytics_db.py
and the audit trail of common/adapters/supervision_db.py) for the last hour and the last
day of region NA, prints each plan (EXPLAIN ANALYZE, BUFFERS) and the median (and range) of
RUNS timings, and exits non-zero if any median is over LIMIT_MS.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta

import psycopg
from psycopg.rows import dict_row

from common.adapters import analytics_db, supervision_db
from common.adapters.migrations import SQL_ROOT, apply_migrations, create_database
from common.settings import load_settings

DATABASE = "bench_supervision"
EVENTS = 1_000_000
DAYS = 30
RUNS = 5
LIMIT_MS = 200.0

BUILD = [
    # Operators of every region, with load rows.
    """INSERT INTO users (id, username, name, role, region, password_hash)
       SELECT 1000 + i, 'bench' || i, 'Bench ' || i, 'operator',
              (ARRAY['US','EU','APAC','LATAM'])[1 + i %% 4], 'x'
       FROM generate_series(0, 199) i""",
    "INSERT INTO operator_load (user_id) SELECT id FROM users WHERE id >= 1000",
    # Events evenly over 30 days, the newest now.
    """INSERT INTO events (event_id, region, rule_type, location, severity, device_id,
                           camera_id, frame_reference, created_at)
       SELECT md5(i::text)::uuid, (ARRAY['NA','EU','APAC','LATAM'])[1 + i %% 4],
              (ARRAY['motion_detection','line_crossing','intrusion','loitering'])[1 + (i / 7) %% 4],
              'site ' || (i %% 50), 1 + (i::bigint * 7919) %% 5, 'device_' || (i %% 500),
              'camera_' || (i %% 300), 'frame_' || i,
              now() - make_interval(secs => %(span)s * (1 - i::float8 / %(n)s))
       FROM generate_series(1, %(n)s) i""",
    # One assignment per event, 1-120 s after it: 60 %% approved, 35 %% rejected (with
    # reasons), 5 %% released (expired); the last ten minutes still pending.
    """INSERT INTO assignments (user_id, event_id, region, severity, rule_type, camera_id,
                                status, deleted, created_at, updated_at, decided_at,
                                decided_by, decision_reason, released_at, release_reason)
       SELECT 1000 + (e.h %% 50) * 4 + (CASE e.region WHEN 'NA' THEN 0 WHEN 'EU' THEN 1
                                        WHEN 'APAC' THEN 2 ELSE 3 END),
              e.event_id, e.region, e.severity, e.rule_type, e.camera_id, CASE WHEN s.fate = 'released' THEN 'pending' ELSE s.fate END,
              s.fate = 'released', t.at, t.at,
              CASE WHEN s.fate IN ('approved', 'rejected')
                   THEN t.at + make_interval(secs => 5 + e.h %% 900) END,
              CASE WHEN s.fate IN ('approved', 'rejected') THEN 1000 END,
              CASE WHEN s.fate = 'rejected' THEN (ARRAY['false_alarm','duplicate',
                   'handled_on_site','other'])[1 + e.h %% 4] END,
              CASE WHEN s.fate = 'released' THEN t.at + interval '15 minutes' END,
              CASE WHEN s.fate = 'released' THEN 'expired' END
       FROM (SELECT ev.*, abs(hashtext(ev.event_id::text)::bigint) AS h FROM events ev) e
       CROSS JOIN LATERAL (SELECT e.created_at + make_interval(secs => 1 + e.h %% 120) AS at) t
       CROSS JOIN LATERAL (SELECT CASE WHEN e.created_at > now() - interval '10 minutes'
                                       THEN 'pending'
                                       WHEN e.h %% 100 < 60 THEN 'approved'
                                       WHEN e.h %% 100 < 95 THEN 'rejected'
                                       ELSE 'released' END AS fate) s""",
    # Two history rows per assignment: created, then decided.
    """INSERT INTO assignment_history (assignment_id, event_id, user_id, actor, at,
                                      previous_state, new_state, reason)
       SELECT assignment_id, event_id, user_id, 'assignment', created_at, NULL, 'pending',
              'assigned' FROM assignments""",
    """INSERT INTO assignment_history (assignment_id, event_id, user_id, actor_id, actor, at,
                                      previous_state, new_state, reason)
       SELECT assignment_id, event_id, user_id, decided_by, 'bench', decided_at, 'pending',
              status, coalesce(decision_reason, 'decided')
       FROM assignments WHERE decided_at IS NOT NULL""",
    "ANALYZE",
]


def build(settings, rebuild: bool) -> str:
    """The bench database, built once (about a few minutes on two cores)."""
    dsn = settings.postgres_dsn(DATABASE)
    if rebuild:
        with psycopg.connect(settings.postgres_dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    created = create_database(settings, DATABASE)
    if apply_migrations(dsn, SQL_ROOT / "assignment_service"):
        # A migration may rewrite rows (030 fills assignments.region): vacuum, so the
        # visibility map lets index-only scans skip the heap, and re-plan on fresh stats.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        if count >= EVENTS and not created:
            print(f"using {DATABASE}: {count:,} events already there")
            return dsn
        for statement in BUILD:
            started = time.perf_counter()
            conn.execute(statement, {"n": EVENTS, "span": DAYS * 86400})
            print(f"built in {time.perf_counter() - started:6.1f} s: "
                  f"{' '.join(statement.split())[:70]}")
    return dsn


def queries(span: timedelta) -> dict[str, tuple[str, dict]]:
    """Every supervisor query with its parameters for the window [now - span, now)."""
    params = {"region": "NA", "user_region": "US", "limit": 100,
              "targets": [60, 60, 20, 3, 1], "reasons": analytics_db.REASONS}
    out = {name: (sql, params) for name, sql in analytics_db.QUERIES.items()}
    history = ("SELECT h.* FROM assignment_history h CROSS JOIN LATERAL (SELECT ev.region"
               " FROM events ev WHERE ev.event_id = h.event_id OFFSET 0) e"
               " WHERE h.at >= %(start)s AND h.at < %(end)s AND e.region = %(region)s"
               " ORDER BY h.at DESC, h.id DESC LIMIT %(limit)s")
    out["history_page"] = (history, params)
    out["history_user_page"] = (history.replace("e.region = %(region)s",
                                                "e.region = %(region)s AND h.user_id = 1000"),
                                params)
    assert supervision_db.HISTORY_COLUMNS  # the page query above is region_history's
    return out


def measure(conn, name: str, sql: str, params: dict) -> tuple[float, float, float]:
    """Median, fastest and slowest of RUNS timings, in milliseconds."""
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        conn.execute(sql, params).fetchall()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), min(timings), max(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="timings only, no plans")
    args = parser.parse_args()
    settings = load_settings()
    dsn = build(settings, args.rebuild)
    slow = []
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        for label, span in (("hour", timedelta(hours=1)), ("day", timedelta(days=1))):
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            for name, (sql, params) in queries(span).items():
                bound = params | {"start": now - span, "end": now}
                if not args.quiet:
                    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, bound)
                    print(f"\n--- {name}, last {label}")
                    print("\n".join(row["QUERY PLAN"] for row in plan.fetchall()))
                median, fastest, slowest = measure(conn, name, sql, bound)
                print(f"{label:>4}  {name:<22} median {median:7.1f} ms"
                      f"  ({fastest:.1f}-{slowest:.1f})")
                if median > LIMIT_MS:
                    slow.append(f"{name} ({label}): {median:.0f} ms")
    if slow:
        print("over the 200 ms bound: " + "; ".join(slow))
        return 1
    print(f"every supervisor query under {LIMIT_MS:.0f} ms (median of {RUNS})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
