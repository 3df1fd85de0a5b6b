"""Issue 3's numbers: a login, or a decision, to the assignment of waiting work.

The services the API calls, in-process, against the real servers: john.smith (US) logs in
while NA events wait; later, at the cap with more waiting, he decides one. Each trial checks
that waiting work was in fact assigned before it stops the clock.
`python -m bench.bench_backfill`, or `make bench`.
"""

from __future__ import annotations

import time

from bench.common_setup import bench_settings, median
from common import resources
from common.adapters.presence import Presence
from common.services import assignment, decisions, sessions
from tests import factories

TRIALS = 30
JOHN = 1


def live(conn) -> list[dict]:
    return conn.execute(
        "SELECT assignment_id FROM assignments WHERE user_id = %s AND status = 'pending' "
        "AND NOT deleted ORDER BY assignment_id", [JOHN]).fetchall()


def login_trials(settings, conn, presence) -> list[float]:
    times = []
    for _ in range(TRIALS):
        start = time.perf_counter()
        token, _user = sessions.login(conn, presence, settings, "john.smith", "pass123")
        elapsed = time.perf_counter() - start
        assert live(conn), "login assigned nothing"
        times.append(elapsed)
        sessions.logout(conn, presence, settings, token)
    return times


def decision_trials(settings, conn, presence) -> list[float]:
    _token, user = sessions.login(conn, presence, settings, "john.smith", "pass123")
    times = []
    for _ in range(TRIALS):
        before = live(conn)
        start = time.perf_counter()
        decisions.decide(conn, presence, settings, before[0]["assignment_id"], user, "approved")
        elapsed = time.perf_counter() - start
        after = live(conn)
        assert len(after) == len(before) and after[-1] != before[-1], "nothing backfilled"
        times.append(elapsed)
    return times


def main() -> None:
    with bench_settings("backfill", BACKFILL_SWEEP_SECONDS=0) as settings:
        conn = resources.assignment_connection(settings, autocommit=True)
        presence = Presence(resources.redis_client(settings), settings)
        assignment.receive(conn, presence, settings,
                           [factories.event("NA") for _ in range(settings.MAX_ASSIGNMENTS + 200)])
        login = login_trials(settings, conn, presence)
        print(f"login -> waiting work assigned: p50 {median(login) * 1000:.1f} ms "
              f"over {TRIALS} logins (target 100; includes the argon2 check)")
        decision = decision_trials(settings, conn, presence)
        print(f"decision -> waiting work assigned: p50 {median(decision) * 1000:.1f} ms "
              f"over {TRIALS} decisions (target 100)")


if __name__ == "__main__":
    main()
