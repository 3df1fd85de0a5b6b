from common.domain import routing
from common.domain.routing import ANY_REGION, Candidate


def test_us_operators_serve_na_events_and_other_regions_serve_themselves():
    assert routing.served_region("US") == "NA"
    assert routing.serving_region("NA") == "US"
    assert routing.served_region("EU") == routing.serving_region("EU") == "EU"


def test_an_event_due_for_overflow_or_in_global_mode_may_go_anywhere():
    assert routing.wanted_region("NA", overflow_due=False, mode="region") == "US"
    assert routing.wanted_region("NA", overflow_due=True, mode="region") == ANY_REGION
    assert routing.wanted_region("APAC", overflow_due=False, mode="global") == ANY_REGION


def test_operator_at_capacity_gets_nothing_more():
    assert routing.pick([Candidate(1, "EU", load=50)], "EU", cap=50) is None


def test_least_loaded_wins_then_oldest_last_assignment_then_lowest_id():
    a, b, c = Candidate(1, "EU", 3, 5.0), Candidate(2, "EU", 2, 9.0), Candidate(3, "EU", 2, 1.0)
    assert routing.pick([a, b, c], "EU", cap=50).user_id == 3
    assert routing.pick([Candidate(9, "EU", 0), Candidate(4, "EU", 0)], "EU", 50).user_id == 4


def test_the_operator_who_lost_an_event_gets_it_back_only_if_nobody_else_can():
    a, b = Candidate(1, "EU", 0), Candidate(2, "EU", 10)
    assert routing.pick([a, b], "EU:1", cap=50).user_id == 2
    assert routing.pick([a], "EU:1", cap=50).user_id == 1


def test_pick_many_counts_each_pick_and_respects_the_cap():
    candidates = [Candidate(1, "US", 48), Candidate(2, "US", 49)]
    assert routing.pick_many(candidates, ["US"] * 4, cap=50, now=1.0) == [1, 2, 1, None]


def test_grant_never_lets_an_operator_pass_the_cap():
    assert routing.grant(5, live=47, cap=50) == 3
    assert routing.grant(5, live=50, cap=50) == 0
    assert routing.grant(2, live=0, cap=50) == 2
