"""The decision rules: which transitions are allowed, and who may decide or act."""

import pytest

from common.domain.decisions import (
    Actor,
    DecisionRefused,
    may_act_for_user,
    may_decide,
    normalize,
    transition,
)

JOHN = Actor(1, "operator", "US")
MIKE = Actor(6, "operator", "EU")
SARAH = Actor(5, "supervisor", "US")
EMMA = Actor(2, "supervisor", "EU")


def test_completed_means_approved():
    assert normalize("completed") == "approved"


@pytest.mark.parametrize("status", ["approved", "rejected"])
def test_pending_work_may_be_approved_or_rejected(status):
    assert transition("pending", False, status) == status


def test_completed_on_pending_work_approves_it():
    assert transition("pending", False, "completed") == "approved"


@pytest.mark.parametrize("status", ["pending", "finished", "", "APPROVED", "deleted"])
def test_anything_but_a_decision_is_refused_as_unknown(status):
    with pytest.raises(ValueError, match="unknown decision"):
        transition("pending", False, status)


def test_released_work_cannot_be_decided():
    with pytest.raises(DecisionRefused, match="released"):
        transition("pending", True, "approved")


@pytest.mark.parametrize("requested", ["approved", "completed"])
def test_the_same_decision_twice_is_refused(requested):
    with pytest.raises(DecisionRefused, match="already approved"):
        transition("approved", False, requested)


@pytest.mark.parametrize(("current", "requested"),
                         [("approved", "rejected"), ("rejected", "approved")])
def test_a_decision_is_never_changed(current, requested):
    with pytest.raises(DecisionRefused, match="already decided"):
        transition(current, False, requested)


def test_an_operator_decides_their_own_work():
    assert may_decide(JOHN, owner_id=1, event_region="NA")


def test_an_operator_may_not_decide_someone_elses_work():
    assert not may_decide(JOHN, owner_id=6, event_region="NA")


def test_a_us_supervisor_decides_north_american_events():
    assert may_decide(SARAH, owner_id=1, event_region="NA")


def test_a_supervisor_may_not_decide_events_of_another_region():
    assert not may_decide(SARAH, owner_id=6, event_region="EU")
    assert not may_decide(EMMA, owner_id=1, event_region="NA")


def test_an_operator_acts_only_for_themself():
    assert may_act_for_user(JOHN, 1, "US")
    assert not may_act_for_user(JOHN, 6, "EU")
    assert not may_act_for_user(MIKE, 9, "EU")


def test_a_supervisor_acts_for_users_of_their_region_only():
    assert may_act_for_user(EMMA, 6, "EU")
    assert not may_act_for_user(EMMA, 1, "US")
    assert may_act_for_user(SARAH, 1, "US")
