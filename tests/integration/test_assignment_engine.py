"""The assignment engine against real PostgreSQL and Redis: routing, waiting, backfill."""

from __future__ import annotations

import random
import time

import pytest

from common import resources
from common.adapters.presence import Presence
from common.domain import routing
from common.services import assignment
from common.services.reconcile import reconcile_counters
from tests import factories, servers


@pytest.fixture
def engine(settings):
    """An assignment_service connection and Presence, for settings with overrides."""

    def build(**overrides):
        s = settings.model_copy(update=overrides) if overrides else settings
        conn = resources.assignment_connection(s, autocommit=True)
        return s, conn, Presence(resources.redis_client(s), s)

    return build


def owners(conn) -> dict:
    rows = conn.execute(
        "SELECT event_id, user_id FROM assignments WHERE status = 'pending' AND NOT deleted"
    ).fetchall()
    return {row["event_id"]: row["user_id"] for row in rows}


def test_events_arriving_while_nobody_is_available_wait_and_are_not_lost(engine):
    s, conn, presence = engine()
    result = assignment.receive(conn, presence, s, [factories.event() for _ in range(5)])
    assert result.stored == 5 and not result.assigned
    assert factories.waiting_count(conn) == 5


def test_backfill_takes_the_most_severe_then_oldest_waiting_work(engine):
    s, conn, presence = engine(MAX_ASSIGNMENTS=3)
    [op] = factories.add_operators(conn, 1, "US")
    events = [
        factories.event(severity=2, age_seconds=100),
        factories.event(severity=5, age_seconds=10),
        factories.event(severity=5, age_seconds=50),
        factories.event(severity=4, age_seconds=500),
        factories.event(severity=1, age_seconds=900),
    ]
    assignment.receive(conn, presence, s, events)
    factories.make_available(conn, presence, [op])
    assert assignment.route_waiting(conn, presence, s) == 3
    assigned = set(owners(conn))
    assert assigned == {events[2].event_id, events[1].event_id, events[3].event_id}


def test_a_new_arrival_does_not_jump_waiting_work_of_the_same_severity(engine):
    s, conn, presence = engine(MAX_ASSIGNMENTS=1)
    [op] = factories.add_operators(conn, 1, "US")
    factories.make_available(conn, presence, [op])
    first, waiting = factories.event(severity=1), factories.event(severity=5, age_seconds=30)
    assignment.receive(conn, presence, s, [first])
    assignment.receive(conn, presence, s, [waiting])
    assert set(owners(conn)) == {first.event_id}
    conn.execute("UPDATE assignments SET status = 'approved', decided_at = now()")
    conn.execute("UPDATE operator_load SET live = 0")
    presence.set_counts({op: 0})  # what a decision does
    newcomer = factories.event(severity=5)
    assignment.receive(conn, presence, s, [newcomer])
    assert set(owners(conn)) == {waiting.event_id}
    assert factories.waiting_count(conn) == 1


def test_operators_receive_only_their_region_and_us_serves_na(engine):
    s, conn, presence = engine()
    us = factories.add_operators(conn, 1, "US", first_id=1000)
    eu = factories.add_operators(conn, 1, "EU", first_id=2000)
    factories.make_available(conn, presence, us + eu)
    na_events = [factories.event("NA") for _ in range(4)]
    eu_events = [factories.event("EU") for _ in range(3)]
    apac = factories.event("APAC")
    assignment.receive(conn, presence, s, na_events + eu_events + [apac])
    got = owners(conn)
    assert {got[e.event_id] for e in na_events} == set(us)
    assert {got[e.event_id] for e in eu_events} == set(eu)
    assert apac.event_id not in got


def test_waiting_work_overflows_to_any_region_after_the_configured_wait(engine):
    s, conn, presence = engine(OVERFLOW_AFTER_SECONDS=1)
    eu = factories.add_operators(conn, 1, "EU")
    factories.make_available(conn, presence, eu)
    apac = factories.event("APAC")
    assignment.receive(conn, presence, s, [apac])
    assert not owners(conn)
    time.sleep(1.2)
    assert assignment.route_waiting(conn, presence, s) == 1
    assert owners(conn) == {apac.event_id: eu[0]}


def test_overflow_minus_one_never_crosses_regions(engine):
    s, conn, presence = engine(OVERFLOW_AFTER_SECONDS=-1)
    eu = factories.add_operators(conn, 1, "EU")
    factories.make_available(conn, presence, eu)
    conn.execute("SELECT 1")
    assignment.receive(conn, presence, s, [factories.event("APAC", age_seconds=10_000)])
    conn.execute("UPDATE events SET waiting_since = now() - interval '1 day'")
    assert assignment.route_waiting(conn, presence, s) == 0


def test_global_mode_ignores_regions_as_the_original_did(engine):
    s, conn, presence = engine(ROUTING_MODE="global")
    eu = factories.add_operators(conn, 1, "EU")
    factories.make_available(conn, presence, eu)
    assignment.receive(conn, presence, s, [factories.event("LATAM"), factories.event("NA")])
    assert set(owners(conn).values()) == set(eu) and len(owners(conn)) == 2


def test_least_loaded_wins_and_a_tie_goes_to_the_oldest_last_assignment(engine):
    s, conn, presence = engine()
    a, b = factories.add_operators(conn, 2, "US")
    factories.make_available(conn, presence, [a, b])
    presence.set_counts({a: 0, b: 0})
    presence.client.hset(presence.last_key, mapping={a: 2000, b: 1000})
    first = factories.event()
    assignment.receive(conn, presence, s, [first])
    assert owners(conn)[first.event_id] == b
    second = factories.event()
    assignment.receive(conn, presence, s, [second])
    assert owners(conn)[second.event_id] == a


def test_an_expired_session_stops_new_work_and_is_pruned(engine):
    s, conn, presence = engine()
    [op] = factories.add_operators(conn, 1, "US")
    factories.make_available(conn, presence, [op], ttl=1)
    assignment.receive(conn, presence, s, [factories.event()])
    time.sleep(1.5)
    assignment.receive(conn, presence, s, [factories.event()])
    assert len(owners(conn)) == 1 and factories.waiting_count(conn) == 1
    assert op not in presence.active_users()


def test_unavailable_operator_keeps_current_work_but_gets_nothing_new(engine):
    s, conn, presence = engine()
    [op] = factories.add_operators(conn, 1, "US")
    factories.make_available(conn, presence, [op])
    assignment.receive(conn, presence, s, [factories.event()])
    presence.set_unavailable(op)
    assignment.receive(conn, presence, s, [factories.event()])
    assert list(owners(conn).values()) == [op] and factories.waiting_count(conn) == 1


def test_the_same_message_twice_and_after_its_decision_creates_no_second_owner(engine):
    s, conn, presence = engine()
    ops = factories.add_operators(conn, 2, "US")
    factories.make_available(conn, presence, ops)
    e = factories.event()
    assignment.receive(conn, presence, s, [e, e])
    assignment.receive(conn, presence, s, [e])
    assert len(owners(conn)) == 1
    conn.execute("UPDATE assignments SET status = 'approved', decided_at = now()")
    result = assignment.receive(conn, presence, s, [e])
    assert result.stored == 0 and not owners(conn)
    assert factories.waiting_count(conn) == 0
    assert conn.execute("SELECT count(*) AS n FROM assignments").fetchone()["n"] == 1


def test_redis_flushed_routes_nothing_until_presence_returns_then_the_cap_holds(engine):
    s, conn, presence = engine(MAX_ASSIGNMENTS=5)
    [op] = factories.add_operators(conn, 1, "US")
    factories.make_available(conn, presence, [op])
    assignment.receive(conn, presence, s, [factories.event() for _ in range(3)])
    servers.delete_namespace_keys(s)
    assignment.receive(conn, presence, s, [factories.event() for _ in range(5)])
    assert len(owners(conn)) == 3
    reconcile_counters(conn, presence)
    presence.touch_session(op)  # the console's next heartbeat
    assert assignment.route_waiting(conn, presence, s) == 2
    assert factories.live_by_user(conn) == {op: 5}
    assert presence.counts()[op] == 5


def test_stale_redis_counts_cannot_pass_the_cap_in_postgresql(engine):
    s, conn, presence = engine(MAX_ASSIGNMENTS=4)
    [op] = factories.add_operators(conn, 1, "US")
    factories.make_available(conn, presence, [op])
    assignment.receive(conn, presence, s, [factories.event() for _ in range(4)])
    presence.set_counts({op: 0})  # Redis believes the operator is idle
    result = assignment.receive(conn, presence, s, [factories.event() for _ in range(3)])
    assert result.refused == 3 and not result.assigned
    assert factories.live_by_user(conn) == {op: 4}
    assert presence.counts()[op] == 4


def test_a_pick_partly_past_the_cap_keeps_what_fits_and_the_rest_of_the_arrivals_wait(engine):
    s, conn, presence = engine(MAX_ASSIGNMENTS=6)
    [op] = factories.add_operators(conn, 1, "US")
    factories.make_available(conn, presence, [op])
    assignment.receive(conn, presence, s, [factories.event() for _ in range(4)])
    presence.set_counts({op: 1})  # Redis is behind: it sees room for 5, PostgreSQL for 2
    result = assignment.receive(conn, presence, s, [factories.event() for _ in range(5)])
    assert result.refused == 3 and len(result.assigned) == 2 and result.stored == 5
    assert factories.live_by_user(conn) == {op: 6} and presence.counts()[op] == 6
    rows = conn.execute("SELECT (waiting_since IS NOT NULL) AS waiting, count(*) AS n "
                        "FROM events GROUP BY 1").fetchall()
    assert {row["waiting"]: row["n"] for row in rows} == {False: 6, True: 3}
    assert len(owners(conn)) == 6


def test_redis_pick_script_agrees_with_the_routing_rules(engine):
    s, conn, presence = engine(MAX_ASSIGNMENTS=6)
    rng = random.Random(3)
    for trial in range(15):
        presence.client.delete(presence.active_key, presence.counts_key, presence.last_key)
        candidates = []
        for uid in range(1, rng.randint(2, 8)):
            region = rng.choice(routing.USER_REGIONS)
            c = routing.Candidate(uid, region, rng.randint(0, 6), float(rng.randint(0, 3)))
            candidates.append(c)
            presence.touch_session(uid)
            presence.set_available(uid, region)
        presence.set_counts({c.user_id: c.load for c in candidates})
        presence.client.hset(presence.last_key,
                             mapping={c.user_id: int(c.last_assigned) for c in candidates})
        wanted = [
            rng.choice([*routing.USER_REGIONS, routing.ANY_REGION])
            + rng.choice(["", f":{rng.randint(1, 8)}"])
            for _ in range(10)
        ]
        expected = routing.pick_many(candidates, wanted, 6, now=1e6)
        assert presence.pick(wanted) == expected, f"trial {trial}"


def test_a_supervisor_smuggled_into_redis_still_receives_nothing(engine):
    s, conn, presence = engine()
    sarah = 5  # supervisor, US: she has no load row, so PostgreSQL refuses her any work
    presence.touch_session(sarah)
    presence.set_available(sarah, "US")
    result = assignment.receive(conn, presence, s, [factories.event("NA")])
    assert not result.assigned and result.refused == 1
    assert factories.waiting_count(conn) == 1
    assert sarah not in presence.active_users()


def test_a_backfill_starts_from_postgresqls_counts_not_a_stale_counter(engine):
    # A counter write that lost a race (a resync that read the load before a decision
    # committed, written after the decision's own write) leaves Redis saying an operator
    # is at the cap while PostgreSQL has a free slot. The backfill the decision asked for
    # must still fill it, not just correct the counter and stop.
    s, conn, presence = engine(MAX_ASSIGNMENTS=3)
    [op] = factories.add_operators(conn, 1, "US")
    factories.make_available(conn, presence, [op])
    assignment.receive(conn, presence, s, [factories.event(region="NA") for _ in range(3)])
    assert list(owners(conn).values()) == [op] * 3
    conn.execute("UPDATE assignments SET status = 'approved', decided_at = now() "
                 "WHERE event_id = %s", [next(iter(owners(conn)))])
    conn.execute("UPDATE operator_load SET live = 2 WHERE user_id = %s", [op])
    presence.set_counts({op: 3})  # the stale write
    assignment.receive(conn, presence, s, [factories.event(region="NA")])  # waits: Redis is full

    assert assignment.route_waiting(conn, presence, s) == 1
    assert list(owners(conn).values()) == [op] * 3
    assert presence.counts()[op] == 3
