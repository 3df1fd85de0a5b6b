import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

from common.adapters import broker
from common.resources import assignment_connection, publisher, relay_connection
from common.services.generator import generate_events
from common.services.relay import CLAIM, CLAIM_UNCONFIRMED, redispatch_lost, relay_pending
from flows.relay_poll import relay_poll
from tests import helpers, servers
from tests.processes import eventually

BOUND = 60  # seconds a wait may last before the test gives up; never a performance limit


def quiet(_line: str) -> None:
    pass


def insert(settings, count: int) -> None:
    with relay_connection(settings) as conn:
        generate_events(conn, count, report=quiet)


def all_event_ids(settings) -> set[str]:
    with relay_connection(settings) as conn:
        return {str(r["event_id"]) for r in conn.execute("SELECT event_id FROM events")}


def dispatched_ids(settings) -> set[str]:
    with relay_connection(settings) as conn:
        rows = conn.execute("SELECT event_id FROM events WHERE dispatched_at IS NOT NULL")
        return {str(r["event_id"]) for r in rows}


def read_queue(settings, expected: int | None = None, idle: float = 2.0) -> list[str]:
    """Consume the test's events.outbound: until `expected` messages arrived (or BOUND
    passed), then until the queue stays quiet for `idle` seconds. Returns the event ids."""
    connection = broker.connect(settings, f"test-reader:{settings.NAMESPACE}")
    channel = connection.channel()
    broker.declare_queues(channel, settings, [broker.OUTBOUND])
    channel.basic_qos(prefetch_count=1000)
    ids: list[str] = []
    deadline = last = time.monotonic()
    deadline += BOUND
    queue = settings.name(broker.OUTBOUND)
    for method, _properties, body in channel.consume(queue, inactivity_timeout=0.5):
        now = time.monotonic()
        if method is not None:
            ids.append(json.loads(body)["eventId"])
            channel.basic_ack(method.delivery_tag)
            last = now
            continue
        expecting = expected is not None and len(ids) < expected and now < deadline
        if not expecting and now - last >= idle:
            break
    channel.cancel()
    connection.close()
    return ids


def start_relay(settings, tmp_path, **env) -> subprocess.Popen:
    environment = servers.settings_env(settings) | env
    log = open(tmp_path / "relay.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "consumers", "relay"], env=environment, stdout=log, stderr=log
    )


def stop_relay(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=BOUND)


def relay_connections(settings) -> list[str]:
    """Pids of the RabbitMQ connections whose client-provided name is this test's relay."""
    return helpers.connection_pids(f"relay:{settings.NAMESPACE}:")


def wait_for_relay_connections(settings, process) -> list[str]:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline and process.poll() is None:
        names = relay_connections(settings)
        if names:
            return names
        time.sleep(0.2)
    raise AssertionError("the relay never connected to RabbitMQ")


def kill_relay_connections(settings) -> int:
    names = relay_connections(settings)
    for name in names:
        subprocess.run(
            ["rabbitmqctl", "close_connection", name, "test: connection killed mid-stream"],
            capture_output=True,
            timeout=BOUND,
            check=True,
        )
    return len(names)


def wait_until_all_dispatched(settings) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if dispatched_ids(settings) == all_event_ids(settings):
            return
        time.sleep(0.2)


def test_one_relay_delivers_every_event_exactly_once(settings):
    insert(settings, 2_500)
    with relay_connection(settings) as conn, publisher(settings, "test-relay") as pub:
        assert relay_pending(conn, pub, settings, batch_size=1_000) == 2_500
        assert relay_pending(conn, pub, settings, batch_size=1_000) == 0
    queued = read_queue(settings, expected=2_500)
    assert Counter(queued).most_common(1)[0][1] == 1
    assert set(queued) == all_event_ids(settings) == dispatched_ids(settings)


def test_two_relays_publishing_5000_events_at_once_put_each_on_the_queue_exactly_once(settings):
    insert(settings, 5_000)
    barrier, counts = threading.Barrier(2), []

    def relay(index: int) -> None:
        with relay_connection(settings) as conn, publisher(settings, f"test-relay-{index}") as pub:
            barrier.wait()
            counts.append(relay_pending(conn, pub, settings, batch_size=250))

    threads = [threading.Thread(target=relay, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 5_000
    queued = read_queue(settings, expected=5_000)
    assert len(queued) == 5_000 and set(queued) == all_event_ids(settings)
    with relay_connection(settings) as conn:
        assert conn.execute("SELECT max(dispatch_count) AS m FROM events").fetchone()["m"] == 1


def test_the_long_running_relay_delivers_everything_though_its_broker_connection_is_killed(
    settings, tmp_path
):
    process = start_relay(settings, tmp_path)
    try:
        wait_for_relay_connections(settings, process)
        producer = threading.Thread(target=lambda: [insert(settings, 1_000) for _ in range(40)])
        producer.start()
        killed = 0
        while producer.is_alive():
            killed += kill_relay_connections(settings)
            time.sleep(0.3)
        producer.join()
        killed += kill_relay_connections(settings)
        wait_until_all_dispatched(settings)
        queued = read_queue(settings, expected=40_000)
    finally:
        assert stop_relay(process) == 0
    assert killed > 0
    assert "relay lost a server" in (tmp_path / "relay.log").read_text()
    every = all_event_ids(settings)
    assert len(every) == 40_000
    assert set(queued) == every  # every event delivered (a re-sent batch may repeat some)
    assert dispatched_ids(settings) <= set(queued)  # none marked without being on the queue
    assert dispatched_ids(settings) == every


def test_the_long_running_relay_reconnects_after_its_postgresql_connections_are_terminated(
    settings, tmp_path
):
    process = start_relay(settings, tmp_path)
    try:
        wait_for_relay_connections(settings, process)
        with relay_connection(settings, autocommit=True) as conn:
            terminated = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()["n"]
        insert(settings, 1_000)
        wait_until_all_dispatched(settings)
        queued = read_queue(settings, expected=1_000)
    finally:
        assert stop_relay(process) == 0
    assert terminated >= 1
    assert "relay lost a server" in (tmp_path / "relay.log").read_text()
    assert sorted(queued) == sorted(all_event_ids(settings)) == sorted(dispatched_ids(settings))


def test_a_new_event_wakes_the_idle_relay_through_listen_notify(settings, tmp_path):
    process = start_relay(settings, tmp_path, RELAY_IDLE_POLL_SECONDS="3600")
    try:
        wait_for_relay_connections(settings, process)
        insert(settings, 1)
        queued = read_queue(settings, expected=1, idle=0.5)
    finally:
        assert stop_relay(process) == 0
    assert queued == list(all_event_ids(settings))


def test_the_claim_query_uses_the_undispatched_index_on_a_million_rows(settings):
    with relay_connection(settings, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO events (event_id, region, rule_type, location, severity, device_id,
                camera_id, frame_reference, state, created_at, dispatched_at,
                receipt_confirmed_at, decision, next_redispatch_at)
            SELECT gen_random_uuid(), (ARRAY['NA','EU','APAC','LATAM'])[1 + i % 4],
                'motion_detection', 'lobby', 1 + i % 5, 'device_' || i % 100,
                'camera_' || i % 500, 'frame_' || i,
                CASE WHEN i % 3 = 0 THEN 'Viewed' ELSE 'Not Viewed' END,
                now() - make_interval(secs => 1000000 - i),
                CASE WHEN i % 100 = 0 AND i % 3 <> 0 THEN NULL
                     ELSE now() - make_interval(secs => 1000000 - i) END,
                CASE WHEN i % 7 = 0 THEN NULL ELSE now() END,
                CASE WHEN i % 3 = 0 THEN 'approved' END,
                now() - make_interval(secs => 1000000 - i)
            FROM generate_series(1, 1000000) AS i
            """
        )
        conn.execute("ANALYZE events")
        claim = explain(conn, CLAIM, (1_000,))
        unconfirmed = explain(conn, CLAIM_UNCONFIRMED, (1_000,))
    assert "events_undispatched_idx" in claim and "Seq Scan" not in claim, claim
    assert "events_redispatch_due_idx" in unconfirmed and "Seq Scan" not in unconfirmed, unconfirmed


def explain(conn, query: str, params: tuple) -> str:
    rows = conn.execute("EXPLAIN " + query, params).fetchall()
    return "\n".join(row["QUERY PLAN"] for row in rows)


def test_redispatch_publishes_again_an_event_never_stored_and_confirms_one_that_was(settings):
    insert(settings, 2)
    lost, stored = sorted(all_event_ids(settings))
    with relay_connection(settings) as conn:
        conn.execute(
            "UPDATE events SET dispatched_at = now() - interval '1 hour', dispatch_count = 1,"
            " next_redispatch_at = now() - interval '1 second'"
        )
    with assignment_connection(settings) as conn:
        conn.execute("INSERT INTO dedup_events (event_id) VALUES (%s)", (stored,))
    with (
        relay_connection(settings) as relay_conn,
        assignment_connection(settings) as assignment_conn,
        publisher(settings, "test-redispatch") as pub,
    ):
        assert redispatch_lost(relay_conn, assignment_conn, pub, settings) == 1
        assert redispatch_lost(relay_conn, assignment_conn, pub, settings) == 0
        rows = {
            str(r["event_id"]): r
            for r in relay_conn.execute(
                "SELECT event_id, dispatch_count, receipt_confirmed_at,"
                " dispatched_at > now() - interval '1 minute' AS fresh FROM events"
            )
        }
    assert read_queue(settings, expected=1, idle=0.5) == [lost]
    assert rows[lost]["dispatch_count"] == 2 and rows[lost]["fresh"]
    assert rows[lost]["receipt_confirmed_at"] is None
    assert rows[stored]["receipt_confirmed_at"] is not None and not rows[stored]["fresh"]


def test_the_relay_poll_flow_dispatches_what_is_pending(settings, monkeypatch, prefect_harness):
    for key, value in servers.settings_env(settings).items():
        monkeypatch.setenv(key, value)
    insert(settings, 30)
    assert relay_poll() == {"dispatched": 30, "redispatched": 0}
    assert sorted(read_queue(settings, expected=30, idle=0.5)) == sorted(all_event_ids(settings))


def test_sigterm_stops_the_relay_cleanly(settings, tmp_path):
    process = start_relay(settings, tmp_path)
    wait_for_relay_connections(settings, process)
    assert stop_relay(process) == 0
    assert "relay stopped" in (tmp_path / "relay.log").read_text()


class HalfConfirming:
    """A publisher whose broker confirms only every other message of a batch."""

    def __init__(self):
        self.sent: list = []

    def publish_batch(self, base, messages, timeout: float = 30.0) -> set:
        self.sent.extend(m.key for m in messages)
        return {m.key for m in messages[::2]}


def test_what_the_broker_does_not_confirm_is_left_undispatched_as_it_was(settings):
    insert(settings, 10)
    pub = HalfConfirming()
    with relay_connection(settings) as conn:
        assert relay_pending(conn, pub, settings, batch_size=100) == 5
        rows = conn.execute("SELECT event_id, dispatched_at, dispatch_count, next_redispatch_at "
                            "FROM events").fetchall()
    confirmed = {str(key) for key in pub.sent[::2]}
    assert len(pub.sent) == 10 and dispatched_ids(settings) == confirmed
    for row in rows:
        if str(row["event_id"]) in confirmed:
            assert row["dispatch_count"] == 1 and row["next_redispatch_at"] is not None
        else:
            assert (row["dispatched_at"], row["dispatch_count"], row["next_redispatch_at"]) \
                == (None, 0, None)


def test_a_busy_relay_keeps_its_idle_publishers_heartbeating(settings, tmp_path):
    """Events one at a time, each waking the relay before its wait slice ends: only the
    first worker publishes, and the second worker's connection must still answer the
    broker's heartbeats (a 1 s heartbeat here: silent for 2 s, the broker closes it)."""
    process = start_relay(settings, tmp_path, RABBITMQ_HEARTBEAT_SECONDS="1")
    try:
        wait_for_relay_connections(settings, process)
        eventually(lambda: len(relay_connections(settings)) == 2, timeout=BOUND,
                   message="both workers' publishing connections open")
        before = sorted(relay_connections(settings))
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            insert(settings, 1)
            time.sleep(0.1)
        wait_until_all_dispatched(settings)
        after = sorted(relay_connections(settings))
    finally:
        assert stop_relay(process) == 0
    log = (tmp_path / "relay.log").read_text()
    assert "relay lost a server" not in log, log
    assert after == before  # the same two connections: none was closed and reopened
    assert dispatched_ids(settings) == all_event_ids(settings)
