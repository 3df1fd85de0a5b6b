"""Supervisors steering work, and the whole story of an assignment or an event.

Called by the HTTP API (common/api/supervision.py). A release goes through
common/services/releases.py; a move is one transaction here: the old assignment released
(reason 'moved'), a new one for the target under the same guard as the router (the
target's users row share-locked, then the load rows in id order, the cap checked by the
guarded UPDATE), history naming both. Reads of the audit trail live here too.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg
import redis

from common.adapters import assignment_db as db
from common.adapters import supervision_db as sdb
from common.adapters.presence import Presence
from common.domain import decisions as rules
from common.domain.routing import served_region
from common.services import assignment, decisions, releases
from common.services.errors import Conflict, Forbidden, NotFound, ServiceError
from common.services.releases import BackfillHook
from common.settings import Settings

log = logging.getLogger(__name__)


class Invalid(ServiceError):
    """The request names something that cannot be used for it (a move to a non-operator,
    or to someone who does not serve the event's region)."""

    status_code = 422


def oversees(user: dict, region: str) -> bool:
    """A supervisor of this event region (a US supervisor for NA)."""
    return user["role"] == rules.SUPERVISOR and served_region(user["region"]) == region


def release(conn: psycopg.Connection, presence: Presence, settings: Settings,
            assignment_id: int, actor_user: dict,
            backfill: BackfillHook | None = None) -> dict:
    """Give live work back to the waiting set: an operator their own, a supervisor any of
    their region. NotFound, Forbidden, or Conflict when it is no longer live."""
    with conn.transaction(), conn.cursor() as cur:
        current = sdb.event_of_assignment(cur, assignment_id)
    if current is None:
        raise NotFound(f"assignment {assignment_id} not found")
    own = actor_user["id"] == current["user_id"]
    if not (own or oversees(actor_user, current["region"])):
        raise Forbidden(f"assignment {assignment_id} is not yours to release")
    reason = "released_by_operator" if own else "released_by_supervisor"
    released = releases.release(conn, presence, settings, [assignment_id], reason,
                                actor_user["username"], actor_user["id"], backfill=backfill)
    if not released:
        raise Conflict(f"assignment {assignment_id} is no longer live (decided or released)")
    with conn.transaction(), conn.cursor() as cur:
        return decisions._fetch(cur, assignment_id)


def move(conn: psycopg.Connection, presence: Presence, settings: Settings,
         assignment_id: int, target_id: int, actor_user: dict,
         backfill: BackfillHook | None = None) -> dict:
    """Move live work to another operator of the event's region, in one transaction.

    NotFound (assignment or target), Forbidden (not the actor's region), Invalid (target
    not an operator serving the region, or already the owner), Conflict (no longer live;
    target at the cap, unavailable or without a live session).
    """
    with conn.transaction(), conn.cursor() as cur:
        current = sdb.lock_assignment(cur, assignment_id)
        if current is None:
            raise NotFound(f"assignment {assignment_id} not found")
        if not oversees(actor_user, current["region"]):
            raise Forbidden(f"assignment {assignment_id} is not yours to move")
        if current["status"] != rules.PENDING or current["deleted"]:
            raise Conflict(f"assignment {assignment_id} is no longer live")
        # The router's guard: the target's users row share-locked before the load rows, so
        # a logout, cleanup or "unavailable" committing meanwhile is waited for and seen.
        routable = db.lock_routable_users(cur, [target_id])
        _check_target(cur, current, target_id)
        if not routable:
            raise Conflict(f"user {target_id} is not available for work now")
        lives = db.lock_loads(cur, sorted({current["user_id"], target_id}))
        added = db.add_load(cur, {target_id: 1}, settings.MAX_ASSIGNMENTS)
        if not added:
            raise Conflict(f"user {target_id} is at the cap ({lives.get(target_id)} of "
                           f"{settings.MAX_ASSIGNMENTS})")
        new = sdb.move(cur, current, target_id, actor_user["username"], actor_user["id"])
        counts = db.drop_loads(cur, {current["user_id"]: 1}) | added
        moved = decisions._fetch(cur, new["assignment_id"])
    log.info("assignment %s (event %s, user %s) moved to user %s as assignment %s by user %s",
             assignment_id, current["event_id"], current["user_id"], target_id,
             new["assignment_id"], actor_user["id"])
    _after_move(conn, presence, settings, counts, backfill, current["user_id"])
    return moved


def _check_target(cur, current: dict, target_id: int) -> None:
    target = sdb.operator_state(cur, target_id)
    if target is None:
        raise NotFound(f"user {target_id} not found")
    if target["role"] != rules.OPERATOR or served_region(target["region"]) != current["region"]:
        raise Invalid(f"user {target_id} is not an operator serving region "
                      f"{current['region']}")
    if target_id == current["user_id"]:
        raise Invalid(f"assignment {current['assignment_id']} is already user {target_id}'s")
    if not target["available"]:
        raise Conflict(f"user {target_id} is not available for work")
    if not target["present"]:
        raise Conflict(f"user {target_id} has no live session")


def _after_move(conn, presence: Presence, settings: Settings, counts: dict[int, int],
                backfill: BackfillHook | None, freed_user: int) -> None:
    """After commit: Redis counters follow the load rows; the freed slot is backfilled (by
    the API's backfill thread when the caller gives its hook, else here)."""
    try:
        presence.set_counts(counts)
        if backfill is not None:
            backfill("move", freed_user)
            return
        assignment.route_waiting(conn, presence, settings)
    except (redis.RedisError, psycopg.OperationalError) as error:
        log.warning("after a move, counters or backfill failed (%r); reconcile catches up",
                    error)


def assignment_story(conn: psycopg.Connection, assignment_id: int, actor_user: dict) -> list:
    """Every history row of one assignment, oldest first, for a supervisor of its region or
    the operator who held it."""
    with conn.transaction(), conn.cursor() as cur:
        current = sdb.event_of_assignment(cur, assignment_id)
        if current is None:
            raise NotFound(f"assignment {assignment_id} not found")
        if not (actor_user["id"] == current["user_id"]
                or oversees(actor_user, current["region"])):
            raise Forbidden(f"assignment {assignment_id} is not yours to read")
        return sdb.story(cur, "assignment_id", assignment_id)


def event_story(conn: psycopg.Connection, event_id, actor_user: dict) -> list:
    """Every history row of one event, oldest first, for a supervisor of its region."""
    with conn.transaction(), conn.cursor() as cur:
        region = sdb.region_of_event(cur, event_id)
        if region is None:
            raise NotFound(f"event {event_id} not found")
        if not oversees(actor_user, region):
            raise Forbidden(f"event {event_id} is not yours to read")
        return sdb.story(cur, "event_id", event_id)


def region_history(conn: psycopg.Connection, actor_user: dict, region: str, start: datetime,
                   end: datetime, user_id: int | None, limit: int,
                   after: tuple[datetime, int] | None) -> list[dict]:
    """One page of the region's audit trail, newest first (the caller pages with `after`)."""
    if not oversees(actor_user, region):
        raise Forbidden(f"region {region} is not yours to supervise")
    with conn.transaction(), conn.cursor() as cur:
        return sdb.region_history(cur, region, start, end, user_id, limit, after)
