"""Releases on real PostgreSQL and Redis: expiry, inactive operators, logout, late duplicates."""

from __future__ import annotations

import time

import pytest

from common.adapters.presence import Presence
from common.resources import assignment_connection, redis_client
from common.services import assignment, decisions, releases, supervision
from common.services.errors import Conflict
from tests import helpers
from tests.factories import add_operators, event, make_available

EMMA = 2  # a supervisor of EU (sql/assignment_service/002_seed_users.sql)


def presence_for(settings) -> Presence:
    return Presence(redis_client(settings), settings)


def short_expiry(settings, **overrides):
    """Settings where work expires after 60 ms; the test then waits past it."""
    return settings.model_copy(update={"ASSIGNMENT_EXPIRY_MINUTES": 0.001, **overrides})


def wait_past_expiry() -> None:
    time.sleep(0.2)


def owner(conn, e) -> int | None:
    row = helpers.live_assignment(conn, e.event_id)
    return row["user_id"] if row else None


def test_expired_work_goes_to_another_operator_and_decided_work_stays(settings, conn):
    s = short_expiry(settings)
    presence = presence_for(s)
    first, second = add_operators(conn, 2, region="EU")
    make_available(conn, presence, [first])
    stale, decided = event("EU", severity=4), event("EU", severity=2)
    assignment.receive(conn, presence, s, [stale, decided])
    decided_row = helpers.decide(settings, conn, helpers.live_assignment(conn, decided.event_id)["assignment_id"])
    make_available(conn, presence, [second])
    wait_past_expiry()

    report = releases.expire_assignments(conn, presence, s)

    assert report == {"released": 1, "assigned": 1}
    assert owner(conn, stale) == second
    assert [(r["status"], r["deleted"]) for r in helpers.assignments_of(conn, decided.event_id)] \
        == [("approved", False)]
    assert helpers.assignments_of(conn, decided.event_id)[0]["decided_at"] == decided_row["decided_at"]
    assert helpers.history(conn, stale.event_id) == [
        (first, None, "pending", "assigned"),
        (first, "pending", "released", "expired"),
        (second, None, "pending", "assigned"),
    ]
    mirror = conn.execute("SELECT severity, created_at FROM events WHERE event_id = %s",
                          [stale.event_id]).fetchone()
    assert (mirror["severity"], mirror["created_at"]) == (4, stale.created_at)
    loads = {r["user_id"]: r["live"] for r in conn.execute("SELECT * FROM operator_load")}
    assert (loads[first], loads[second]) == (0, 1)
    assert (presence.counts()[first], presence.counts()[second]) == (0, 1)


def test_released_work_keeps_its_priority_over_newer_waiting_work(settings, conn):
    s = short_expiry(settings, MAX_ASSIGNMENTS=1)
    presence = presence_for(s)
    first, second = add_operators(conn, 2, region="EU")
    make_available(conn, presence, [first])
    old_severe = event("EU", severity=5, age_seconds=600)
    assignment.receive(conn, presence, s, [old_severe])
    newer = event("EU", severity=3)
    assignment.receive(conn, presence, s, [newer])  # the only operator is at the cap
    assert (owner(conn, old_severe), owner(conn, newer)) == (first, None)
    make_available(conn, presence, [second])
    wait_past_expiry()

    releases.expire_assignments(conn, presence, s)

    # Drawn first (most severe), it avoids its last owner; the newer event takes what is left.
    assert (owner(conn, old_severe), owner(conn, newer)) == (second, first)


def test_a_late_duplicate_of_a_released_event_creates_no_second_owner(settings, conn):
    presence = presence_for(settings)
    (operator,) = add_operators(conn, 1, region="EU")
    make_available(conn, presence, [operator])
    e = event("EU")
    assignment.receive(conn, presence, settings, [e])
    presence.set_unavailable(operator)
    releases.release(conn, presence, settings,
                     [helpers.live_assignment(conn, e.event_id)["assignment_id"]],
                     "supervisor", "supervisor", 2)

    while_waiting = assignment.receive(conn, presence, settings, [e])
    assert (while_waiting.stored, owner(conn, e)) == (0, None)
    make_available(conn, presence, [operator])
    assignment.route_waiting(conn, presence, settings)
    assignment.receive(conn, presence, settings, [e, e])

    rows = helpers.assignments_of(conn, e.event_id)
    assert [(r["user_id"], r["deleted"], r["release_reason"]) for r in rows] == [
        (operator, True, "supervisor"),
        (operator, False, None),
    ]
    assert conn.execute("SELECT count(*) AS n FROM dedup_events").fetchone()["n"] == 1


def test_operators_without_a_live_session_lose_their_work_to_present_ones(settings, conn):
    presence = presence_for(settings)
    present, gone = add_operators(conn, 2, region="EU")
    make_available(conn, presence, [present, gone])
    kept, orphan = event("EU", severity=3), event("EU", severity=3)
    assignment.receive(conn, presence, settings, [kept, orphan])
    conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second' "
                 "WHERE user_id = %s", [gone])
    assert {owner(conn, kept), owner(conn, orphan)} == {present, gone}
    orphaned = kept if owner(conn, kept) == gone else orphan

    report = releases.cleanup_inactive_users(conn, presence, settings)

    assert (report["released"], report["assigned"]) == (1, 1)
    assert (owner(conn, kept), owner(conn, orphan)) == (present, present)
    assert helpers.history(conn, orphaned.event_id)[1:] == [
        (gone, "pending", "released", "inactive"),
        (present, None, "pending", "assigned"),
    ]
    available = conn.execute("SELECT available FROM users WHERE id = %s", [gone]).fetchone()
    assert available["available"] is False
    assert gone not in presence.active_users()
    assert not presence.session_alive(gone)
    assert present in presence.active_users()


def test_logout_releases_the_operators_work_to_a_colleague(settings, conn):
    presence = presence_for(settings)
    leaving, staying = add_operators(conn, 2, region="EU")
    make_available(conn, presence, [leaving, staying])
    events = [event("EU") for _ in range(4)]
    assignment.receive(conn, presence, settings, events)
    presence.end_session(leaving)  # what the API's logout does before releasing

    released = releases.release_user(conn, presence, settings, leaving, "logout", "user", leaving)

    assert released == 2
    assert [owner(conn, e) for e in events] == [staying] * 4
    rows = conn.execute(
        "SELECT actor, actor_id, reason FROM assignment_history WHERE new_state = 'released'"
    ).fetchall()
    assert [(r["actor"], r["actor_id"], r["reason"]) for r in rows] == [("user", leaving, "logout")] * 2


def test_decided_or_already_released_work_is_never_released(settings, conn):
    presence = presence_for(settings)
    (operator,) = add_operators(conn, 1, region="EU")
    make_available(conn, presence, [operator])
    decided, released = event("EU"), event("EU")
    assignment.receive(conn, presence, settings, [decided, released])
    decided_id = helpers.live_assignment(conn, decided.event_id)["assignment_id"]
    released_id = helpers.live_assignment(conn, released.event_id)["assignment_id"]
    helpers.decide(settings, conn, decided_id, "rejected")
    presence.set_unavailable(operator)
    assert len(releases.release(conn, presence, settings, [released_id], "expired", "test")) == 1

    again = releases.release(conn, presence, settings, [decided_id, released_id], "expired", "test")

    assert again == []
    rows = {r["assignment_id"]: r for r in conn.execute("SELECT * FROM assignments")}
    assert (rows[decided_id]["status"], rows[decided_id]["deleted"]) == ("rejected", False)
    assert conn.execute("SELECT count(*) AS n FROM assignment_history "
                        "WHERE new_state = 'released'").fetchone()["n"] == 1


def _in_the_decisions_window(monkeypatch, change) -> None:
    """Run `change` (a real, committed service call on its own connection) between a
    decision's read and its write, once: the interleaving two requests can produce."""
    record = decisions._record_decision
    pending = [change]

    def record_after_the_change(*args, **kwargs):
        while pending:
            pending.pop()()
        return record(*args, **kwargs)

    monkeypatch.setattr(decisions, "_record_decision", record_after_the_change)


def test_a_release_between_a_decisions_read_and_write_wins_and_the_load_drops_once(
        settings, conn, monkeypatch):
    presence = presence_for(settings)
    (operator,) = add_operators(conn, 1, region="EU")
    make_available(conn, presence, [operator])
    work = event("EU")
    assignment.receive(conn, presence, settings, [work])
    assignment_id = helpers.live_assignment(conn, work.event_id)["assignment_id"]

    def release_it():
        with assignment_connection(settings, autocommit=True) as other:
            releases.release(other, presence, settings, [assignment_id], "expired", "test")

    _in_the_decisions_window(monkeypatch, release_it)
    with pytest.raises(Conflict, match="released"):
        helpers.decide(settings, conn, assignment_id)

    row = conn.execute("SELECT * FROM assignments WHERE assignment_id = %s",
                       [assignment_id]).fetchone()
    assert (row["status"], row["deleted"], row["decided_at"]) == ("pending", True, None)
    assert helpers.outbox_row(conn, assignment_id) is None
    assert "approved" not in [new_state for _, _, new_state, _ in
                              helpers.history(conn, work.event_id)]
    # the release's backfill may have given the event back to the same operator: the load
    # row counts what is live, the decision took nothing off it
    live = conn.execute("SELECT count(*) AS n FROM assignments WHERE user_id = %s "
                        "AND status = 'pending' AND NOT deleted", [operator]).fetchone()["n"]
    load = conn.execute("SELECT live FROM operator_load WHERE user_id = %s",
                        [operator]).fetchone()["live"]
    assert load == live


def test_a_move_between_a_supervisors_read_and_write_leaves_the_decision_to_the_new_row(
        settings, conn, monkeypatch):
    presence = presence_for(settings)
    first, second = add_operators(conn, 2, region="EU")
    make_available(conn, presence, [first, second])
    work = event("EU")
    assignment.receive(conn, presence, settings, [work])
    before = helpers.live_assignment(conn, work.event_id)
    holder = before["user_id"]
    target = second if holder == first else first
    supervisor = decisions.get_user(conn, EMMA)

    def move_it():
        with assignment_connection(settings, autocommit=True) as other:
            supervision.move(other, presence, settings, before["assignment_id"], target,
                             supervisor)

    _in_the_decisions_window(monkeypatch, move_it)
    with pytest.raises(Conflict, match="released"):
        decisions.decide(conn, presence, settings, before["assignment_id"], supervisor,
                         "approved")

    moved = helpers.live_assignment(conn, work.event_id)
    assert moved["user_id"] == target and moved["status"] == "pending"
    loads = {r["user_id"]: r["live"] for r in conn.execute(
        "SELECT user_id, live FROM operator_load WHERE user_id = ANY(%s)", [[first, second]])}
    assert loads == {holder: 0, target: 1}
    assert conn.execute("SELECT count(*) AS n FROM outbox_assignments").fetchone()["n"] == 0
