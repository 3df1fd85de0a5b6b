"""Which decisions may be made, and by whom. Standard library only.

The decide service (common/services/decisions.py) asks these rules inside its transaction;
the unit tests state them without any server.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.domain.routing import served_region

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
DECISIONS = (APPROVED, REJECTED)
# The original documented {"status": "completed"}; it means approved.
ALIASES = {"completed": APPROVED}
OPERATOR = "operator"
SUPERVISOR = "supervisor"


class DecisionRefused(Exception):
    """The assignment's state does not allow this decision; the message says why."""


@dataclass(frozen=True)
class Actor:
    """Who asks: a logged-in user."""

    user_id: int
    role: str
    region: str


def normalize(requested: str) -> str:
    """The decision a requested status means ('completed' is 'approved')."""
    status = ALIASES.get(requested, requested)
    if status not in DECISIONS:
        raise ValueError(f"unknown decision {requested!r}: expected approved or rejected")
    return status


def transition(current: str, deleted: bool, requested: str) -> str:
    """The new status of a `current` assignment asked to become `requested`.

    Only live work (pending, not released) may be decided, and only once: the same decision
    twice is refused as well, so a retried request cannot pass as a second decision.
    """
    new = normalize(requested)
    if deleted:
        raise DecisionRefused("assignment was released and can no longer be decided")
    if current == new:
        raise DecisionRefused(f"assignment is already {current}")
    if current != PENDING:
        raise DecisionRefused(f"assignment was already decided: {current}")
    return new


def may_act_for_user(actor: Actor, user_id: int, user_region: str) -> bool:
    """An operator acts only for themself; a supervisor for anyone of their region."""
    if actor.user_id == user_id:
        return True
    return actor.role == SUPERVISOR and actor.region == user_region


def may_decide(actor: Actor, owner_id: int, event_region: str) -> bool:
    """An operator decides only their own work; a supervisor events of their region
    (a US supervisor serves NA events)."""
    if actor.role == OPERATOR:
        return actor.user_id == owner_id
    return actor.role == SUPERVISOR and served_region(actor.region) == event_region
