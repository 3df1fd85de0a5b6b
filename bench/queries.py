"""Every per-event and per-poll query at a million rows: `python -m bench.queries`
(`make bench-queries`).

Builds once (bench/queries_data.py) two databases holding a million events, a million
assignments and two million history rows over 30 days, then runs each query of the hot
path, the API's requests and the scheduled flows under EXPLAIN (ANALYZE, BUFFERS) with
realistic parameters: RUNS times each, every run in a transaction rolled back, so a write
measures the same work each time. The SQL is the application's own: module constants, or
captured by calling the application function with a recording cursor (`Capture`), so the
bench measures what runs, not a copy.

Each row of the table gives the indexes the plan used, any sequential scan (and the table's
size), the median execution time (EXPLAIN's, on the server, TIMING OFF) with min–max, and the
verdict: per-event, per-request and per-poll statements must not scan a table of SMALL_ROWS
or more and must stay under LIMIT_MS; nightly batches (retention) are reported, a scan
printed as a warning. Every statement of a database where migrations numbered 040-049
created indexes or statistics is measured again with those dropped inside the rolled-back
transaction: the "without 040-049" column. Writes the `queries` section of
`.bench/results.json` and every plan as text to `.bench/query_plans.txt`. Exits 1 when a
per-event, per-request or per-poll statement fails.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from bench import queries_data, report
from common.adapters import assignment_db as db
from common.adapters import broker, rejected_events
from common.adapters.migrations import SCHEMAS, SQL_ROOT
from common.domain import routing
from common.domain.events import to_message
from common.messages import DecisionMessage, OutboundEvent, parse
from common.services import (
    decisions,
    inbound,
    job_reports,
    outbox,
    overview,
    relay,
    retention,
    sessions,
)

RUNS = 15  # timed runs of each statement (a loaded machine needs many for a median)
NIGHTLY_RUNS = 5  # nightly batches take 100 ms and more each
LIMIT_MS = 5.0
# Events per batch in the per-event statements: at 500 events/s a consumer batch is what
# arrives while the one before it is handled (10-20 events); `--batch` for a backlog.
BATCH = 20
PLANS = report.OUT / "query_plans.txt"
# A sequential scan of a table this small (rows in the bench databases: users, load rows,
# rejected events) is the plan PostgreSQL should choose; the tables of the million are not.
SMALL_ROWS = 10_000
NEW_MIGRATIONS = re.compile(r"^04\d_.*\.sql$")
CREATED = re.compile(r"CREATE\s+(?:UNIQUE\s+)?(INDEX|STATISTICS)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                     r"(\w+)", re.IGNORECASE)
LINE_MAX = 400  # plan lines (literal id arrays) cut in query_plans.txt
KINDS = ("per event", "per request", "per poll", "nightly batch")
SIZES: dict[str, int] = {}  # table -> rows (both databases; filled by measure_all)


@dataclass
class Query:
    name: str  # where it comes from: module.function (statement)
    kind: str  # one of KINDS
    database: str  # "relay" or "assignment"
    sql: str
    params: object = None
    # statements run first in the same (rolled-back) transaction: a delete's children
    before: list = field(default_factory=list)


@dataclass
class Measured:
    query: Query
    timings: list[float] = field(default_factory=list)
    planning: list[float] = field(default_factory=list)
    rows: int = 0
    indexes: list[str] = field(default_factory=list)
    seq_scans: list[str] = field(default_factory=list)
    without: dict | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.timings)

    @property
    def problems(self) -> list[str]:
        """A sequential scan of a table of SMALL_ROWS or more, or (but for nightly
        batches) a median over LIMIT_MS. A statement that reads no table (an INSERT of
        values) or only small ones needs no index."""
        out = [f"seq scan on {t}" for t in self.seq_scans if SIZES.get(t, 0) >= SMALL_ROWS]
        if self.query.kind != "nightly batch" and self.median > LIMIT_MS:
            out.append(f"over {LIMIT_MS:g} ms")
        return out


class Capture:
    """Stands in for a psycopg connection and cursor: records each statement and its
    parameters, returns no rows. The application function runs as written, so the SQL and
    its parameters are exactly what it would send."""

    autocommit = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.rowcount = 0

    def execute(self, sql, params=None, **_):
        self.calls.append((sql, params))
        return self

    def fetchall(self):
        return []

    def fetchone(self):
        return None

    def __iter__(self):
        return iter(())

    def transaction(self, **_):
        return contextlib.nullcontext()

    def cursor(self, **_):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False


class _Nothing:
    """A presence (Redis) that answers nothing: the login path reaches its SQL."""

    def __getattr__(self, _name):
        return self

    def __call__(self, *_, **__):
        return (0, 0)


def capture(fn, *args, **kwargs) -> list[tuple[str, object]]:
    """The statements `fn` sends. It may fail after them (no rows came back): ignored."""
    recorder = Capture()
    with contextlib.suppress(Exception):
        fn(recorder, *args, **kwargs)
    if not recorder.calls:
        raise RuntimeError(f"{fn.__qualname__} sent no statement")
    return recorder.calls


def _add(out: list[Query], name: str, kind: str, database: str, calls) -> None:
    calls = calls if isinstance(calls, list) else [calls]
    for index, (sql, params) in enumerate(calls):
        suffix = f" #{index + 1}" if len(calls) > 1 else ""
        out.append(Query(name + suffix, kind, database, sql, params))


def samples(settings, batch: int = BATCH) -> dict:
    """Realistic parameters, read from the bench databases; `batch` events per batch."""
    s: dict = {"batch": batch}
    with psycopg.connect(settings.assignment_dsn, row_factory=dict_row) as conn:
        # The operators' consoles beat: their sessions are live now, as in a running system.
        conn.execute("UPDATE sessions SET expires_at = now() + interval '5 minutes', "
                     "last_seen_at = now() WHERE ended_at IS NULL")
        s["user"] = conn.execute(
            "SELECT user_id, count(*) AS n FROM assignments WHERE status = 'pending' AND NOT "
            "deleted GROUP BY user_id ORDER BY n DESC, user_id LIMIT 1").fetchone()["user_id"]
        s["user_row"] = conn.execute("SELECT * FROM users WHERE id = %s",
                                     [s["user"]]).fetchone()
        s["live"] = conn.execute(
            "SELECT assignment_id, user_id, event_id, status FROM assignments WHERE user_id "
            "= %s AND status = 'pending' AND NOT deleted ORDER BY assignment_id",
            [s["user"]]).fetchall()
        s["pending"] = conn.execute(
            "SELECT a.assignment_id, a.event_id, 'approved' AS decision, NULL AS "
            "decision_reason, NULL AS decision_note, a.user_id AS decided_by, now() AS "
            "decided_at FROM assignments a WHERE status = 'pending' AND NOT deleted "
            "ORDER BY assignment_id LIMIT %s", [batch]).fetchall()
        s["waiting"] = [r["event_id"] for r in conn.execute(
            "SELECT event_id FROM events WHERE waiting_since IS NOT NULL AND region = 'NA' "
            "ORDER BY severity DESC, created_at LIMIT %s", [batch]).fetchall()]
        s["operators"] = [r["id"] for r in conn.execute(
            "SELECT id FROM users WHERE id >= 1000 AND region = 'US' ORDER BY id LIMIT 20")]
        s["completed"] = [r["assignment_id"] for r in conn.execute(
            "SELECT assignment_id FROM outbox_assignments WHERE status = 'completed' "
            "ORDER BY assignment_id")]
        s["now"] = conn.execute("SELECT now() AS t").fetchone()["t"]
    with psycopg.connect(settings.relay_dsn, row_factory=dict_row) as conn:
        rows = conn.execute(f"SELECT {relay.EVENT_FIELDS} FROM events WHERE dispatched_at IS "
                            "NULL ORDER BY created_at LIMIT %s", [batch]).fetchall()
        s["undispatched"] = [r["event_id"] for r in rows]
        s["arriving"] = [parse(OutboundEvent, broker.encode(to_message(r))) for r in rows]
        s["unconfirmed"] = [r["event_id"] for r in conn.execute(
            "SELECT event_id FROM events WHERE state = 'Not Viewed' AND dispatched_at IS NOT "
            "NULL AND receipt_confirmed_at IS NULL ORDER BY next_redispatch_at LIMIT %s",
            [batch])]
    s["decisions"] = [parse(DecisionMessage, broker.encode(outbox.decision_message(r)))
                      for r in s["pending"]]
    s["token"] = f"bench-queries-{s['user']}"
    return s


def catalogue(settings, s: dict) -> list[Query]:
    """Every statement the hot path, the API's requests and the flows send per event,
    per request or per poll, with the parameters of a busy moment."""
    q: list[Query] = []
    ev, req, poll, night = KINDS
    user, ops, token = s["user"], s["operators"], s["token"]
    one = s["live"][0]
    actor = {"id": user, "username": s["user_row"]["username"], "role": "operator",
             "region": s["user_row"]["region"]}
    waits = relay.backoff(settings)
    # relay (consumers relay, on each NOTIFY; relay-poll)
    _add(q, "relay.CLAIM", ev, "relay", (relay.CLAIM, (settings.RELAY_BATCH_SIZE,)))
    _add(q, "relay.mark_dispatched", ev, "relay",
         capture(relay.mark_dispatched, s["undispatched"], waits))
    _add(q, "relay.CLAIM_UNCONFIRMED", poll, "relay",
         (relay.CLAIM_UNCONFIRMED, (settings.RELAY_BATCH_SIZE,)))
    _add(q, "relay.STORED", poll, "assignment", (relay.STORED, (s["unconfirmed"],)))
    _add(q, "rejected_events.FIND", poll, "assignment",
         (rejected_events.FIND, (s["unconfirmed"],)))
    _add(q, "relay.MARK_RECEIVED", poll, "relay", (relay.MARK_RECEIVED, (s["unconfirmed"],)))
    _add(q, "relay.MARK_DEAD_LETTERED", poll, "relay",
         (relay.MARK_DEAD_LETTERED, ("bench", s["unconfirmed"][0])))
    # assignment consumer, per batch of arrivals
    _add(q, "assignment_db.store_events", ev, "assignment",
         capture(db.store_events, s["arriving"]))
    overflow = settings.OVERFLOW_AFTER_SECONDS
    # A routing pass draws per served region and then overflow, in one statement
    # (services/assignment._draw); global routing draws once from every region.
    regional = [(region, s["batch"], False) for region in routing.EVENT_REGIONS]
    _add(q, "assignment_db.draw_waiting (regions + overflow)", ev, "assignment",
         capture(db.draw_waiting, [*regional, (None, s["batch"], True)], overflow))
    _add(q, "assignment_db.draw_waiting (region)", ev, "assignment",
         capture(db.draw_waiting, regional[:1], overflow))
    _add(q, "assignment_db.draw_waiting (overflow)", ev, "assignment",
         capture(db.draw_waiting, [(None, s["batch"], True)], overflow))
    _add(q, "assignment_db.draw_waiting (global)", ev, "assignment",
         capture(db.draw_waiting, [(None, s["batch"], False)], overflow))
    _add(q, "assignment_db.lock_routable_loads", ev, "assignment",
         capture(db.lock_routable_loads, ops))
    _add(q, "assignment_db.lock_loads", ev, "assignment", capture(db.lock_loads, ops))
    _add(q, "assignment_db.add_load", ev, "assignment",
         capture(db.add_load, dict.fromkeys(ops, 5), settings.MAX_ASSIGNMENTS))
    pairs = [(ops[i % len(ops)], e) for i, e in enumerate(s["waiting"])]
    _add(q, "assignment_db.insert_assignments", ev, "assignment",
         capture(db.insert_assignments, pairs, "router", "assigned"))
    # What a batch of arrivals runs instead of store_events + insert_assignments: the dedup
    # rows, then the mirror rows and assignments of arrivals and drawn events in one statement.
    _add(q, "assignment_db.record_received", ev, "assignment",
         capture(db.record_received, s["arriving"]))
    half = s["arriving"][: len(s["arriving"]) // 2]
    mixed = [(ops[i % len(ops)], e.event_id) for i, e in enumerate(half)] + pairs
    _add(q, "assignment_db.store_and_assign", ev, "assignment",
         capture(db.store_and_assign, s["arriving"], mixed, "router", "assigned"))
    _add(q, "assignment_db.live_counts (resync)", ev, "assignment", capture(db.live_counts))
    # rejected_events.record: the assignment consumer, per dead letter
    _add(q, "rejected_events.RECORD", ev, "assignment",
         (rejected_events.RECORD, (s["unconfirmed"][0], b"x" * 32, "bench", "invalid_fields")))
    # inbound consumer (relay_service), per batch of decisions
    _add(q, "inbound.apply_decisions", ev, "relay",
         capture(inbound.apply_decisions, s["decisions"]))
    # ack consumer, per batch of acks
    _add(q, "outbox.finish", ev, "assignment", capture(outbox.finish, s["completed"]))
    # the API, per request
    _add(q, "sessions.authenticate", req, "assignment",
         capture(sessions.authenticate, None, settings, token))
    _add(q, "sessions.login (user)", req, "assignment",
         capture(sessions.login, _Nothing(), settings, actor["username"], "wrong"))
    _add(q, "sessions._start_session", req, "assignment",
         capture(sessions._start_session, settings, s["user_row"], "bench-new-token"))
    _add(q, "sessions.heartbeat", req, "assignment",
         capture(sessions._refresh_session, settings, token))
    _add(q, "sessions.set_available", req, "assignment",
         capture(sessions.set_available, _Nothing(), settings, s["user_row"], True))
    _add(q, "sessions.logout (end)", req, "assignment", capture(sessions._end_session, token))
    _add(q, "sessions.logout (last session)", req, "assignment",
         capture(sessions._last_session, user))
    _add(q, "decisions.list_assignments", req, "assignment",
         capture(decisions.list_assignments, user, settings.ASSIGNMENT_EXPIRY_MINUTES))
    _add(q, "decisions.get_user", req, "assignment", capture(decisions.get_user, user))
    _add(q, "decisions.decide (read)", req, "assignment",
         capture(decisions._read_assignment, one["assignment_id"]))
    _add(q, "decisions.decide (record)", req, "assignment",
         capture(decisions._record_decision, one, actor, "approved", None, None))
    _add(q, "decisions._fetch (release, move)", req, "assignment",
         capture(decisions._fetch, one["assignment_id"]))
    live_ids = [r["assignment_id"] for r in s["live"]]
    _add(q, "assignment_db.live_assignment_ids", req, "assignment",
         capture(db.live_assignment_ids, [user]))
    _add(q, "assignment_db.lock_live_assignments", req, "assignment",
         capture(db.lock_live_assignments, live_ids))
    _add(q, "assignment_db.mark_released", req, "assignment",
         capture(db.mark_released, s["live"], "logout", "bench", user))
    _add(q, "assignment_db.drop_loads", req, "assignment",
         capture(db.drop_loads, {user: len(live_ids)}))
    # the API's fast-path thread, per decision
    _add(q, "fastpath._UNPUBLISHED", ev, "assignment",
         (_fastpath_unpublished(), [s["completed"][:1]]))
    _add(q, "outbox.publish_decided (fast path)", ev, "assignment",
         capture(_claim_outbox, settings, s["completed"][:1]))
    _add(q, "outbox._MARK_PUBLISHED", ev, "assignment",
         (outbox._MARK_PUBLISHED, [s["completed"][:1]]))
    # flows and polls
    _add(q, "outbox.publish_decided (sweep)", poll, "assignment",
         capture(_claim_outbox, settings, None))
    _add(q, "assignment_db.lock_stale_assignments", poll, "assignment",
         capture(db.lock_stale_assignments, settings.ASSIGNMENT_EXPIRY_MINUTES, 2000))
    _add(q, "assignment_db.inactive_operators", poll, "assignment",
         capture(db.inactive_operators))
    _add(q, "assignment_db.inactive_operators (among)", poll, "assignment",
         capture(db.inactive_operators, among=ops))
    _add(q, "assignment_db.lock_users", poll, "assignment", capture(db.lock_users, ops))
    _add(q, "assignment_db.set_unavailable", poll, "assignment",
         capture(db.set_unavailable, ops))
    _add(q, "assignment_db.available_operators", poll, "assignment",
         capture(db.available_operators))
    _add(q, "job_reports.released_per_operator", poll, "assignment",
         capture(job_reports.released_per_operator, "expire-assignments",
                 s["now"] - timedelta(minutes=1)))
    _add(q, "api.metrics._SYSTEM (scrape)", poll, "assignment",
         (_metrics_system(), {"targets": [3600.0, 3600.0, 1200.0, 180.0, 60.0]}))
    _add(q, "overview._operators", poll, "assignment", capture(overview._operators, "US"))
    _add(q, "overview._waiting_by_severity", poll, "assignment",
         capture(overview._waiting_by_severity, "NA"))
    # prune-old-data, nightly: at RETENTION_DAYS (nothing that old here) and at 29 days
    # (a day of rows past the cutoff, the steady state of a daily run)
    batch = settings.RETENTION_BATCH_SIZE
    for label, days in ((f"{settings.RETENTION_DAYS} d", settings.RETENTION_DAYS),
                        ("29 d", 29)):
        cut = retention.cutoff(datetime.now(UTC), days)
        _add(q, f"retention._OLD_DECIDED ({label})", night, "assignment",
             (retention._OLD_DECIDED, {"cutoff": cut, "batch": batch}))
        for table, statement in retention._BATCHED.items():
            _add(q, f"retention.{table} ({label})", night, "assignment",
                 (statement, {"cutoff": cut, "batch": batch}))
        _add(q, f"retention._RELAY_EVENTS ({label})", night, "relay",
             (retention._RELAY_EVENTS, {"cutoff": cut, "batch": batch}))
    return q


def _claim_outbox(conn, settings, ids):
    """outbox._publish_batch's claim, without the broker: it stops at the first statement
    (Capture returns no rows)."""
    return outbox._publish_batch(conn, None, settings, ids)


def _fastpath_unpublished() -> str:
    from common.api import fastpath
    return fastpath._UNPUBLISHED


def _metrics_system() -> str:
    from common.api import metrics
    return metrics._SYSTEM


def retention_deletes(settings, conn) -> list[Query]:
    """prune-old-data's deletes of one batch of events, with the ids its finder returns at
    a 29-day cutoff."""
    cut = retention.cutoff(datetime.now(UTC), 29)
    with conn.transaction(force_rollback=True):
        ids = list(dict.fromkeys(r["event_id"] for r in conn.execute(
            retention._OLD_DECIDED, {"cutoff": cut, "batch": settings.RETENTION_BATCH_SIZE})))
    out: list[Query] = []
    done: list = []
    for table, statement in retention._DELETE_EVENT_ROWS:
        out.append(Query(f"retention delete {table} (29 d)", "nightly batch", "assignment",
                         statement, [ids], before=list(done)))
        done.append((statement, [ids]))
    return out


def new_objects() -> dict[str, list[tuple[str, str]]]:
    """{database: [(INDEX or STATISTICS, name)]} created by the migrations numbered 040-049."""
    out: dict[str, list[tuple[str, str]]] = {}
    for database, folder in SCHEMAS.items():
        for path in sorted((SQL_ROOT / folder).glob("*.sql")):
            if NEW_MIGRATIONS.match(path.name):
                out.setdefault(database, []).extend(
                    (kind.upper(), name) for kind, name in CREATED.findall(path.read_text()))
    return out


def _walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def explain(conn, query: Query, drop=()) -> dict:
    """One run of EXPLAIN (ANALYZE, BUFFERS) in a transaction rolled back; `drop`: objects
    ((kind, name)) dropped first, inside it, to measure the plan without them. TIMING OFF:
    the total is measured, without a clock read per row and node inflating it (the plans
    in query_plans.txt keep the per-node times)."""
    with conn.transaction(force_rollback=True):
        for kind, name in drop:
            conn.execute(f"DROP {kind} {name}")
        for sql, params in query.before:
            conn.execute(sql, params)
        row = conn.execute("EXPLAIN (ANALYZE, TIMING OFF, BUFFERS, FORMAT JSON) " + query.sql,
                           query.params).fetchone()
    return row[0][0] if isinstance(row, tuple) else next(iter(row.values()))[0]


def measure(conn, query: Query, runs: int, drop=()) -> Measured:
    result = Measured(query)
    explain(conn, query, drop)  # warm the cache as a running system has it
    for _ in range(runs):
        plan = explain(conn, query, drop)
        result.timings.append(plan["Execution Time"])
        result.planning.append(plan["Planning Time"])
    top = plan["Plan"]
    result.rows = int(top.get("Actual Rows", 0))
    for node in _walk(top):
        if "Index Name" in node and node["Index Name"] not in result.indexes:
            result.indexes.append(node["Index Name"])
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] not in result.seq_scans:
            result.seq_scans.append(node["Relation Name"])
    return result


def text_plan(conn, query: Query) -> str:
    with conn.transaction(force_rollback=True):
        for sql, params in query.before:
            conn.execute(sql, params)
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query.sql, query.params).fetchall()
    lines = (next(iter(r.values())) if isinstance(r, dict) else r[0] for r in rows)
    return "\n".join(line if len(line) <= LINE_MAX else line[:LINE_MAX] + " ..."
                     for line in lines)


def run(runs: int, rebuild: bool, batch: int = BATCH) -> tuple[list[Measured], dict]:
    settings = queries_data.build(rebuild)
    PLANS.parent.mkdir(exist_ok=True)
    with PLANS.open("w") as plans:
        results = measure_all(settings, runs, batch, plans)
    facts = {"events": queries_data.EVENTS, "days": queries_data.DAYS, "runs": runs,
             "batch": batch, "limit_ms": LIMIT_MS}
    return results, facts


def measure_all(settings, runs: int, batch: int, plans) -> list[Measured]:
    """Every statement of the catalogue measured on the databases of `settings`; each
    plan written to the text file `plans`."""
    s = samples(settings, batch)
    fresh = new_objects()
    results: list[Measured] = []
    with psycopg.connect(settings.relay_dsn, row_factory=dict_row) as relay_conn, \
            psycopg.connect(settings.assignment_dsn, row_factory=dict_row) as asg_conn:
        conns = {"relay": relay_conn, "assignment": asg_conn}
        for conn in conns.values():
            conn.execute("SET application_name = 'bench.queries'")
            for row in conn.execute("SELECT relname, reltuples::bigint AS n FROM pg_class "
                                    "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"):
                SIZES[row["relname"]] = max(SIZES.get(row["relname"], 0), row["n"])
        for query in catalogue(settings, s) + retention_deletes(settings, asg_conn):
            conn = conns[query.database]
            runs_here = min(runs, NIGHTLY_RUNS) if query.kind == "nightly batch" else runs
            measured = measure(conn, query, runs_here)
            if fresh.get(query.database):
                # Statistics change plans without showing in them: every query of a
                # database with new objects is measured without them too.
                old = measure(conn, query, runs_here, drop=fresh[query.database])
                measured.without = {"median_ms": round(old.median, 3),
                                    "indexes": old.indexes, "seq_scans": old.seq_scans}
            results.append(measured)
            plans.write(f"--- {query.name} ({query.kind}, {query.database})\n"
                        f"{' '.join(query.sql.split())}\n{text_plan(conn, query)}\n\n")
            print(f"{measured.median:8.3f} ms  {query.name}", file=sys.stderr, flush=True)
    return results


def section(results: list[Measured], facts: dict) -> dict:
    """The `queries` section of results.json."""
    per = {}
    for m in results:
        per[m.query.name] = {
            "kind": m.query.kind, "database": m.query.database, "rows": m.rows,
            "median_ms": round(m.median, 3), "min_ms": round(min(m.timings), 3),
            "max_ms": round(max(m.timings), 3),
            "planning_ms": round(statistics.median(m.planning), 3),
            "indexes": m.indexes, "seq_scans": m.seq_scans, "problems": m.problems,
            **({"without_040_049": m.without} if m.without else {})}
    hot = [m for m in results if m.query.kind != "nightly batch"]
    slowest = max(hot, key=lambda m: m.median)
    return {**facts, "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "slowest_hot_ms": round(slowest.median, 3), "slowest_hot": slowest.query.name,
            "failing": [m.query.name for m in hot if m.problems],
            "nightly_warnings": [m.query.name for m in results
                                 if m.problems and m.query.kind == "nightly batch"],
            "queries": per}


def table(results: list[Measured]) -> str:
    lines = ["| query | kind | db | rows | plan: indexes (seq scans) | median ms (min–max) "
         "| without 040-049 (ms) | verdict |", "|---|---|---|---:|---|---:|---|---|"]
    for m in results:
        scans = ", ".join(m.indexes) or "-"
        if m.seq_scans:
            scans += f" (seq: {', '.join(f'{t}, {SIZES.get(t, 0):,} rows' for t in m.seq_scans)})"
        before = "-"
        if m.without:
            seq = f", seq: {', '.join(m.without['seq_scans'])}" if m.without["seq_scans"] else ""
            before = f"{m.without['median_ms']:.3f}{seq}"
        verdict = "; ".join(m.problems) or "ok"
        lines.append(f"| {m.query.name} | {m.query.kind} | {m.query.database} | {m.rows} | "
                     f"{scans} | {m.median:.3f} ({min(m.timings):.3f}–{max(m.timings):.3f}) | "
                     f"{before} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queries", description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="build the databases again")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs per query")
    parser.add_argument("--batch", type=int, default=BATCH,
                        help="events per batch in the per-event statements (at most 100)")
    args = parser.parse_args(argv)
    if args.runs < 1 or not 1 <= args.batch <= 100:
        print("bench.queries: --runs must be at least 1, --batch between 1 and 100",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    results, facts = run(args.runs, args.rebuild, args.batch)
    facts["seconds"] = round(time.monotonic() - started)
    data = section(results, facts)
    report.save({"queries": data})
    print(table(results))
    print(f"\nplans: {PLANS}\nresults: {report.RESULTS} (section `queries`)")
    if data["nightly_warnings"]:
        print(f"nightly batches with a sequential scan (not failing the run): "
              f"{', '.join(data['nightly_warnings'])}", file=sys.stderr)
    if data["failing"]:
        print(f"failing: {', '.join(data['failing'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
