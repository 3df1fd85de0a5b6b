"""The operator's side, through the real HTTP API process: decision -> source `Viewed`,
decision -> backfill, login -> work.

- decision -> Viewed: PUT /assignments/{id} with an operator's token; the figure is the
  source row's `updated_at` (set by `python -m consumers inbound`) minus its `decided_at`
  (the decision's own time, carried in the message): both PostgreSQL clocks, so it holds
  whether the API publishes on the request thread or on a background one;
- decision -> backfill: the operator sits at the cap with work waiting; from sending the
  PUT to a new assignment of theirs being visible in PostgreSQL;
- login -> work: POST /auth/login of john.smith (password check included) while NA work
  waits, to his first assignment being visible; then POST /auth/logout releases it.
Called by bench.__main__.
"""

from __future__ import annotations

import time

import httpx

from bench.stack import add_operators, api, consumers, fresh, rss_of, spread, token_for
from common import resources
from common.adapters.presence import Presence
from common.services import assignment
from tests import factories
from tests.helpers import insert_source

JOHN = 1
POLL = 0.002


def _route(settings, conn, presence, region: str, count: int) -> None:
    """`count` source events of `region` in both databases, routed as the consumer would."""
    events = [factories.event(region) for _ in range(count)]
    insert_source(settings, events)
    for first in range(0, count, 500):
        assignment.receive(conn, presence, settings, events[first:first + 500])


def _wait(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(POLL)
    raise TimeoutError(f"not seen within {timeout}s: {check}")


def _pending(conn, user_id: int) -> list[int]:
    return [r["assignment_id"] for r in conn.execute(
        "SELECT assignment_id FROM assignments WHERE user_id = %s AND status = 'pending' "
        "AND NOT deleted ORDER BY assignment_id", [user_id])]


def decisions(client: httpx.Client, conn, relay, user_id: int, trials: int):
    """Decide `trials` assignments one at a time; (backfill ms list, decided event ids)."""
    headers = {"Authorization": f"Bearer {token_for(user_id)}"}
    backfill, events = [], []
    for _ in range(trials):
        before = _pending(conn, user_id)
        start = time.perf_counter()
        answer = client.put(f"/assignments/{before[0]}", json={"status": "approved"},
                            headers=headers)
        answer.raise_for_status()
        _wait(lambda last=before[-1]: max(_pending(conn, user_id) or [0]) > last)
        backfill.append((time.perf_counter() - start) * 1000)
        event_id = answer.json()["event_id"]
        events.append(event_id)
        _wait(lambda e=event_id: relay.execute("SELECT 1 FROM events WHERE event_id = %s "
                                              "AND state = 'Viewed'", [e]).fetchone())
    return backfill, events


def viewed_ms(relay, event_ids) -> list[float]:
    return [r["ms"] for r in relay.execute(
        "SELECT extract(epoch FROM updated_at - decided_at) * 1000 AS ms FROM events "
        "WHERE event_id = ANY(%s::uuid[])", [event_ids])]


def logins(client: httpx.Client, conn, trials: int) -> list[float]:
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        answer = client.post("/auth/login", json={"username": "john.smith",
                                                  "password": "pass123"})
        answer.raise_for_status()
        _wait(lambda: _pending(conn, JOHN))
        times.append((time.perf_counter() - start) * 1000)
        client.post("/auth/logout", headers={
            "Authorization": f"Bearer {answer.json()['token']}"}).raise_for_status()
        _wait(lambda: not _pending(conn, JOHN))
    return times


def measure(quick: bool) -> dict:
    trials, login_trials = (10, 3) if quick else (100, 15)
    with fresh("review", BACKFILL_SWEEP_SECONDS=0) as settings, \
            resources.assignment_connection(settings, autocommit=True) as conn, \
            resources.relay_connection(settings, autocommit=True) as relay:
        presence = Presence(resources.redis_client(settings), settings)
        (operator,) = add_operators(conn, presence, 1, regions=["EU"])
        _route(settings, conn, presence, "EU", settings.MAX_ASSIGNMENTS + trials + 5)
        _route(settings, conn, presence, "NA", settings.MAX_ASSIGNMENTS + 5)
        with consumers(settings, "inbound") as inbound, consumers(settings, "ack") as ack, \
                api(settings) as (url, api_proc), httpx.Client(base_url=url, timeout=30) as client:
            decisions(client, conn, relay, operator, 3)  # warm-up, not counted
            backfill, events = decisions(client, conn, relay, operator, trials)
            login = logins(client, conn, login_trials)
            rss = rss_of({"inbound": inbound, "ack": ack, "api": [api_proc]})
        viewed = viewed_ms(relay, events)
    return {"decision_to_viewed_ms": spread(viewed), "backfill_ms": spread(backfill),
            "login_to_work_ms": spread(login), "rss_mb": rss}
