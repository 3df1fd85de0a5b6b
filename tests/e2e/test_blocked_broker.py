"""A blocked RabbitMQ must not block the API: logins, listings and decisions still answer,
and the decisions reach `Viewed` once the broker takes publishes again.

The broker is blocked with a memory alarm (`rabbitmqctl set_vm_memory_high_watermark
0.0000001`): that blocks EVERY publisher on the machine, so the window is kept to a few
seconds of requests and the watermark read before is restored in a `finally`. Run rarely.
Asserts answers (status codes), not speed; the times are printed.
"""

from __future__ import annotations

import subprocess
import tempfile
import time

import httpx

from common.adapters import assignment_db
from common.resources import assignment_connection
from tests import factories, helpers
from tests.processes import eventually, running, serving_api

BLOCKING_WATERMARK = "0.0000001"


def _ctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def _watermark() -> list[str]:
    """The current watermark as `set_vm_memory_high_watermark` arguments."""
    value = _ctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
    if value.startswith("{absolute,"):
        return ["absolute", value.removeprefix("{absolute,").rstrip("}").strip()]
    float(value)  # refuse to go on with a value we could not restore
    return [value]


def _memory_alarm() -> bool:
    return "memory" in _ctl("eval", "rabbit_alarm:get_alarms().")


def _timed(call, *args, **kwargs):
    start = time.perf_counter()
    answer = call(*args, **kwargs)
    return answer, (time.perf_counter() - start) * 1000


def _seed(settings, count: int) -> list:
    events = [factories.event("NA", severity=4) for _ in range(count)]
    helpers.insert_source(settings, events)
    with assignment_connection(settings) as conn, conn.cursor() as cur:
        assignment_db.store_events(cur, events)
    return events


def test_logins_listings_and_decisions_answer_while_the_broker_is_blocked(settings):
    events = _seed(settings, 6)
    restore = _watermark()
    with tempfile.TemporaryFile() as logs, serving_api(settings, logs, 240) as url, \
            running(settings, "inbound", "ack"), httpx.Client(base_url=url,
                                                              timeout=20) as api:
        # 20 s: a generous bound on "it answers"; a publish inside the request would wait
        # for the broker's confirms (30 s) and fail it.
        token = api.post("/auth/login", json={"username": "john.smith",
                                              "password": "pass123"}).json()["token"]
        john = {"Authorization": f"Bearer {token}"}
        work = eventually(lambda: len(api.get("/users/1/assignments", headers=john)
                                      .json()) == 6 and
                          api.get("/users/1/assignments", headers=john).json(),
                          message="john's six assignments")
        times: dict[str, list[float]] = {}
        codes: dict[str, list[int]] = {}

        def record(name, answer, ms):
            codes.setdefault(name, []).append(answer.status_code)
            times.setdefault(name, []).append(ms)

        try:
            _ctl("set_vm_memory_high_watermark", BLOCKING_WATERMARK)
            eventually(_memory_alarm, timeout=30, message="the broker's memory alarm")
            blocked_at = time.monotonic()
            for item in work[:4]:
                record("decision", *_timed(api.put, f"/assignments/{item['assignment_id']}",
                                           headers=john, json={"status": "approved"}))
                record("listing", *_timed(api.get, "/users/1/assignments", headers=john))
            record("login", *_timed(api.post, "/auth/login",
                                    json={"username": "mike.ross", "password": "pass123"}))
            record("heartbeat", *_timed(api.post, "/auth/heartbeat", headers=john))
            blocked_for = time.monotonic() - blocked_at
        finally:
            _ctl("set_vm_memory_high_watermark", *restore)
        eventually(lambda: not _memory_alarm(), timeout=30, message="alarm cleared")
        print(f"\nbroker blocked for {blocked_for:.1f} s; answers in ms while blocked:")
        for name, values in times.items():
            print(f"  {name}: {', '.join(f'{v:.0f}' for v in values)}")

        assert all(code == 200 for values in codes.values() for code in values), codes
        decided = {item["event_id"] for item in work[:4]}
        start = time.monotonic()
        eventually(lambda: all(helpers.source_event(settings, e.event_id)["state"] == "Viewed"
                               for e in events if str(e.event_id) in decided),
                   timeout=120, interval=0.2, message="decisions Viewed after the unblock")
        print(f"all four decisions Viewed {time.monotonic() - start:.1f} s after the unblock")
        undecided = [e for e in events if str(e.event_id) not in decided]
        assert all(helpers.source_event(settings, e.event_id)["state"] != "Viewed"
                   for e in undecided)
