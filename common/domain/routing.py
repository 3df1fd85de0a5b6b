"""Who may receive an event, and who among them gets it. Standard library only.

The same rules run inside Redis (the pick script in adapters/presence.py) for speed; these
functions are their readable statement, used by the services and tested without servers.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_REGIONS = ("NA", "EU", "APAC", "LATAM")
USER_REGIONS = ("US", "EU", "APAC", "LATAM")
ANY_REGION = "*"

# A user's region names the event region it serves; only US differs (it serves NA).
_SERVES = {"US": "NA"}
_SERVED_BY = {served: user_region for user_region, served in _SERVES.items()}


def served_region(user_region: str) -> str:
    """The event region an operator of `user_region` serves."""
    return _SERVES.get(user_region, user_region)


def serving_region(event_region: str) -> str:
    """The user region whose operators serve `event_region`."""
    return _SERVED_BY.get(event_region, event_region)


def wanted_region(event_region: str, overflow_due: bool, mode: str) -> str:
    """The user region an event may go to, or ANY_REGION.

    `overflow_due`: the event has waited longer than OVERFLOW_AFTER_SECONDS (PostgreSQL
    computes it from `waiting_since` with its own clock, in the query that draws the event).
    """
    if mode == "global" or overflow_due:
        return ANY_REGION
    return serving_region(event_region)


@dataclass
class Candidate:
    """An available, present operator as the picker sees them."""

    user_id: int
    region: str
    load: int
    last_assigned: float = 0.0


def pick(candidates: list[Candidate], wanted: str, cap: int) -> Candidate | None:
    """Least loaded eligible operator under the cap; ties to the oldest last assignment.

    `wanted` is a user region or ANY_REGION, optionally `:<id>` of an operator to avoid
    (who just lost the event): they get it back only when nobody else is eligible.
    """
    region, _, avoid = wanted.partition(":")
    eligible = [
        c for c in candidates if c.load < cap and (region == ANY_REGION or c.region == region)
    ]
    preferred = [c for c in eligible if str(c.user_id) != avoid] or eligible
    if not preferred:
        return None
    return min(preferred, key=lambda c: (c.load, c.last_assigned, c.user_id))


def pick_many(candidates: list[Candidate], wanted: list[str], cap: int, now: float) -> list:
    """Pick for each wanted region in turn, counting each pick (mirrors the Redis script).

    The j-th pick (from 1) is stamped `now + j`, so later picks of one batch are newer.
    """
    picks = []
    for j, region in enumerate(wanted, start=1):
        chosen = pick(candidates, region, cap)
        if chosen is not None:
            chosen.load += 1
            chosen.last_assigned = now + j
        picks.append(chosen.user_id if chosen else None)
    return picks


def grant(requested: int, live: int, cap: int) -> int:
    """How many of `requested` new assignments an operator holding `live` may take."""
    return max(0, min(requested, cap - live))
