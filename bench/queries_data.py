"""The million-row databases of `python -m bench.queries`, built once and kept.

`bench_queries_assignment` gets bench.bench_supervision's BUILD (a million events and
assignments over 30 days, two history rows per assignment; the same statements, imported)
and then what the hot path also reads: dedup rows, outbox rows, sessions, a waiting set,
consistent load rows, a few rejected events. `bench_queries_relay` gets the source side of
the same million events (same ids and times, decided where the assignment side decided),
plus a backlog the relay has not dispatched yet and a few lost events due for re-dispatch.
"""

from __future__ import annotations

import time

import psycopg

from bench import bench_supervision
from common.adapters.migrations import migrate
from common.settings import Settings, load_settings

RELAY_DB = "bench_queries_relay"
ASSIGNMENT_DB = "bench_queries_assignment"
EVENTS = bench_supervision.EVENTS
DAYS = bench_supervision.DAYS
# What a moment of a busy system holds beside the history.
WAITING = 2_000  # events waiting for an operator (the operators are saturated)
UNDISPATCHED = 100  # new source rows the relay has not claimed yet
LOST = 100  # dispatched, never stored: due for re-dispatch
UNPUBLISHED = 50  # decided, outbox row not yet finished
ENDED_SESSIONS_PER_OPERATOR = 90  # three logins a day for 30 days

# The fate of an event, as bench_supervision's BUILD draws it (same hash, same shares).
_FATE = """CASE WHEN e.created_at > now() - interval '10 minutes' THEN 'pending'
                WHEN e.h %% 100 < 60 THEN 'approved'
                WHEN e.h %% 100 < 95 THEN 'rejected' ELSE 'released' END"""

ASSIGNMENT_EXTRA = [
    "INSERT INTO dedup_events (event_id, created_at) SELECT event_id, received_at FROM events",
    # The waiting set: new events of every region and severity, the last five minutes.
    """INSERT INTO events (event_id, region, rule_type, location, severity, device_id,
                           camera_id, frame_reference, created_at, received_at, waiting_since,
                           released_from)
       SELECT gen_random_uuid(), (ARRAY['NA','EU','APAC','LATAM'])[1 + i %% 4], 'intrusion',
              'site ' || (i %% 50), 1 + i %% 5, 'device_' || (i %% 500), 'camera_' || (i %% 300),
              'frame_w' || i, now() - make_interval(secs => 300.0 * i / %(waiting)s),
              now() - make_interval(secs => 300.0 * i / %(waiting)s),
              now() - make_interval(secs => 300.0 * i / %(waiting)s),
              CASE WHEN i %% 10 = 0 THEN 1000 + i %% 200 END
       FROM generate_series(1, %(waiting)s) i""",
    """INSERT INTO dedup_events (event_id, created_at)
       SELECT event_id, received_at FROM events WHERE waiting_since IS NOT NULL""",
    # Every decision has its outbox row, finished, but the newest few.
    """INSERT INTO outbox_assignments (assignment_id, status, created_at, published_at,
                                      attempts, finished_at)
       SELECT assignment_id, 'finished', decided_at, decided_at + interval '5 ms', 1,
              decided_at + interval '20 ms'
       FROM assignments WHERE decided_at IS NOT NULL""",
    """UPDATE outbox_assignments SET status = 'completed', finished_at = NULL,
              published_at = NULL, attempts = 0
       WHERE id IN (SELECT id FROM outbox_assignments ORDER BY created_at DESC
                    LIMIT %(unpublished)s)""",
    # Operators: available, each with one live session and 30 days of ended ones.
    "UPDATE users SET available = true WHERE id >= 1000",
    """INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
       SELECT sha256(convert_to('bench-queries-' || id, 'UTF8')), id, now() - interval '1 hour',
              now(), now() + interval '5 minutes'
       FROM users WHERE id >= 1000""",
    """INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at,
                            ended_at)
       SELECT sha256(convert_to('old-' || u.id || '-' || k, 'UTF8')), u.id, t.at,
              t.at + interval '7 hours', t.at + interval '7 hours 5 minutes',
              t.at + interval '7 hours'
       FROM users u CROSS JOIN generate_series(1, %(ended)s) k
       CROSS JOIN LATERAL (SELECT now() - make_interval(
           secs => %(span)s * k::float8 / %(ended)s) AS at) t
       WHERE u.id >= 1000""",
    """UPDATE operator_load l SET live = c.n, last_assigned_at = now()
       FROM (SELECT user_id, count(*) AS n FROM assignments
             WHERE status = 'pending' AND NOT deleted GROUP BY user_id) c
       WHERE l.user_id = c.user_id""",
    """INSERT INTO rejected_events (event_id, body_sha256, reason, kind, at)
       SELECT gen_random_uuid(), sha256(convert_to(i::text, 'UTF8')), 'bench', 'invalid_fields',
              now() - make_interval(secs => %(span)s * i::float8 / 200)
       FROM generate_series(1, 200) i""",
]

RELAY_BUILD = [
    # The same million source events (ids, regions, severities and times as the
    # assignment side), decided where it decided; dispatched and confirmed received.
    f"""INSERT INTO events (event_id, region, rule_type, location, severity, device_id,
                            camera_id, frame_reference, state, created_at, updated_at,
                            dispatched_at, dispatch_count, receipt_confirmed_at,
                            next_redispatch_at, assignment_id, decision, decision_reason,
                            decided_by, decided_at)
       SELECT e.event_id, e.region, e.rule_type, e.location, e.severity, e.device_id,
              e.camera_id, e.frame_reference,
              CASE WHEN f.fate IN ('approved', 'rejected') THEN 'Viewed' ELSE 'Not Viewed' END,
              e.created_at, e.created_at, e.created_at + interval '3 ms', 1,
              CASE WHEN e.created_at < now() - interval '2 minutes'
                   THEN e.created_at + interval '1 minute' END,
              e.created_at + interval '5 minutes',
              CASE WHEN f.fate IN ('approved', 'rejected') THEN e.i END,
              CASE WHEN f.fate IN ('approved', 'rejected') THEN f.fate END,
              CASE WHEN f.fate = 'rejected' THEN 'false_alarm' END,
              CASE WHEN f.fate IN ('approved', 'rejected') THEN 1000 END,
              CASE WHEN f.fate IN ('approved', 'rejected')
                   THEN e.created_at + make_interval(secs => 6 + e.h %% 1000) END
       FROM (SELECT s.*, abs(hashtext(s.event_id::text)::bigint) AS h
             FROM (SELECT i, md5(i::text)::uuid AS event_id,
                          (ARRAY['NA','EU','APAC','LATAM'])[1 + i %% 4] AS region,
                          (ARRAY['motion_detection','line_crossing','intrusion',
                                 'loitering'])[1 + (i / 7) %% 4] AS rule_type,
                          'site ' || (i %% 50) AS location,
                          1 + (i::bigint * 7919) %% 5 AS severity,
                          'device_' || (i %% 500) AS device_id,
                          'camera_' || (i %% 300) AS camera_id, 'frame_' || i AS frame_reference,
                          now() - make_interval(secs => %(span)s * (1 - i::float8 / %(n)s))
                              AS created_at
                   FROM generate_series(1, %(n)s) i) s) e
       CROSS JOIN LATERAL (SELECT {_FATE} AS fate) f""",
    # New rows the relay has not claimed yet, and lost ones due for re-dispatch.
    """INSERT INTO events (event_id, region, rule_type, location, severity, device_id,
                           camera_id, frame_reference, created_at)
       SELECT gen_random_uuid(), (ARRAY['NA','EU','APAC','LATAM'])[1 + i %% 4], 'intrusion',
              'site 1', 1 + i %% 5, 'device_1', 'camera_1', 'frame_u' || i,
              now() - make_interval(secs => i::float8 / 500)
       FROM generate_series(1, %(undispatched)s) i""",
    """INSERT INTO events (event_id, region, rule_type, location, severity, device_id,
                           camera_id, frame_reference, created_at, dispatched_at,
                           dispatch_count, next_redispatch_at)
       SELECT gen_random_uuid(), 'EU', 'intrusion', 'site 2', 3, 'device_2', 'camera_2',
              'frame_l' || i, now() - interval '10 minutes', now() - interval '10 minutes', 1,
              now() - interval '5 minutes'
       FROM generate_series(1, %(lost)s) i""",
]

PARAMS = {"n": EVENTS, "span": DAYS * 86400, "waiting": WAITING,
          "undispatched": UNDISPATCHED, "lost": LOST, "unpublished": UNPUBLISHED,
          "ended": ENDED_SESSIONS_PER_OPERATOR}


def bench_settings() -> Settings:
    """The environment's settings, pointed at the two bench databases."""
    return load_settings(POSTGRES_DB_RELAY=RELAY_DB, POSTGRES_DB_ASSIGNMENT=ASSIGNMENT_DB)


def build(rebuild: bool = False) -> Settings:
    """Both databases at a million rows (about ten minutes on two quiet cores); kept
    between runs, rebuilt when asked or when a build did not finish."""
    settings = bench_settings()
    if rebuild or not _complete(settings):
        with psycopg.connect(settings.postgres_dsn("postgres"), autocommit=True) as admin:
            for name in (RELAY_DB, ASSIGNMENT_DB):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        migrate(settings)
        fill(settings, EVENTS)
        for dsn in (settings.assignment_dsn, settings.relay_dsn):
            _run(dsn, ["CREATE TABLE bench_built (at timestamptz)",
                       "INSERT INTO bench_built VALUES (now())"])
    else:
        migrate(settings)  # new migrations (040-049) reach the kept databases
        print(f"using {ASSIGNMENT_DB} and {RELAY_DB} (built before; --rebuild starts over)")
        # What earlier runs (each statement rolled back, many times) left dead in the
        # tables and indexes goes, as autovacuum keeps a running system.
        for dsn in (settings.assignment_dsn, settings.relay_dsn):
            _run(dsn, ["VACUUM (ANALYZE)"])
    return settings


def fill(settings: Settings, events: int, verbose: bool = True) -> None:
    """Both (migrated, empty) databases of `settings` with `events` events and the rest in
    proportion; the test of the bench fills small ones."""
    params = PARAMS | {"n": events}
    _run(settings.assignment_dsn, [s for s in bench_supervision.BUILD if s != "ANALYZE"]
         + ASSIGNMENT_EXTRA, params, verbose)
    _run(settings.relay_dsn, RELAY_BUILD, params, verbose)
    for dsn in (settings.assignment_dsn, settings.relay_dsn):
        _run(dsn, ["VACUUM (ANALYZE)"], params, verbose)


def _complete(settings: Settings) -> bool:
    for dsn in (settings.assignment_dsn, settings.relay_dsn):
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                if conn.execute("SELECT to_regclass('bench_built')").fetchone()[0] is None:
                    return False
        except psycopg.OperationalError:
            return False
    return True


def _run(dsn: str, statements: list[str], params: dict = PARAMS, verbose: bool = True) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            started = time.perf_counter()
            conn.execute(statement, params if "%" in statement else None)
            if verbose:
                print(f"built in {time.perf_counter() - started:6.1f} s: "
                      f"{' '.join(statement.split())[:70]}", flush=True)
