"""Failover between broker addresses (RABBITMQ_URL listing several, comma-separated).

- With the machine's broker as the second address and nothing listening at the first, every
  kind of client passes over the dead one: /health's probe, the API's /metrics, a
  publisher and a real assignment consumer process. These run in `make test`.
- On three real extra RabbitMQ nodes (bench.rabbit_cluster): the work queues are quorum
  queues with all three as members, and a publisher and a real assignment consumer process,
  both given two nodes' addresses, keep working when the first node stops: what was
  published before the stop is still on the quorum queue, what is published after goes
  through the second node, and every event is stored exactly once. Starting three nodes and
  joining them takes one to two minutes here, so these carry the `cluster` marker:
  `make test` deselects them (pyproject.toml) and `make bench-cluster` runs them
  (`pytest -m cluster`). They never skip: without root or rabbitmq-server they fail with
  the one-line reason.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bench import rabbit_cluster
from common import health, resources
from common.adapters import broker
from common.adapters.amqp import rabbitmq_parameters
from common.adapters.presence import Presence
from common.api.app import create_app
from tests import factories, servers
from tests.integration.test_assignment_race import stored
from tests.integration.test_metrics import api_samples
from tests.processes import eventually, free_port, running

FIRST, SECOND, _ = rabbit_cluster.NODES


def dead_url() -> str:
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"


@pytest.fixture
def dead_first(settings):
    """The test's settings with a dead address before the machine's broker."""
    return settings.model_copy(
        update={"RABBITMQ_URL": f"{dead_url()},{settings.rabbitmq_url}"})


def test_health_and_metrics_report_the_broker_up_when_a_later_address_answers(dead_first):
    assert health.check_rabbitmq(dead_first) is None
    probe = health.BrokerProbe(dead_first)
    try:
        assert probe.check() is None
    finally:
        probe.close()
    with TestClient(create_app(dead_first)) as client:
        samples = api_samples(client)
    queues = {labels for (name, labels) in samples if name == "assignment_queue_messages"}
    assert len(queues) == 2 * len(broker.QUEUES), samples.keys()


def test_health_names_the_broker_down_when_no_address_answers(settings):
    down = settings.model_copy(update={"RABBITMQ_URL": f"{dead_url()},{dead_url()}"})
    assert health.check_rabbitmq(down)


@pytest.mark.slow
def test_a_publisher_and_a_consumer_pass_over_a_dead_first_address(dead_first):
    conn = resources.assignment_connection(dead_first, autocommit=True)
    events = [factories.event() for _ in range(300)]
    with broker.ConfirmingPublisher(dead_first, "test-dead-first") as publisher, \
            running(dead_first, "assignment") as [consumer]:
        publish(dead_first, publisher, events)
        assert connected_port(publisher) == rabbitmq_parameters(dead_first)[1].port
        eventually(lambda: stored(conn) == 300, message="every event stored")
        assert consumer.poll() is None


@pytest.fixture(scope="module")
def cluster():
    """The three nodes, running and joined; left as found (stopped if this started them)."""
    was_running = [node for node in rabbit_cluster.NODES if rabbit_cluster.is_running(node)]
    rabbit_cluster.start()
    yield rabbit_cluster.NODES
    if was_running:
        rabbit_cluster.start()  # a node stopped by a test rejoins
    else:
        rabbit_cluster.stop()


@pytest.fixture
def two_urls(settings, cluster):
    """The test's settings with RABBITMQ_URL naming the first two nodes, in that order."""
    on_cluster = settings.model_copy(update={"RABBITMQ_URL": rabbit_cluster.urls(cluster[:2])})
    yield on_cluster
    servers.tear_down(on_cluster)  # its queues on the cluster (databases: already gone)


def publish(settings, publisher: broker.ConfirmingPublisher, events) -> None:
    """Publish events as the relay does, retrying a batch whose connection died (the
    relay's loop does the same): the retry connects to the next address."""
    for start in range(0, len(events), 500):
        chunk = [broker.Message(e.event_id, broker.encode(factories.message(e)))
                 for e in events[start:start + 500]]
        for _attempt in range(3):
            try:
                assert len(publisher.publish_batch(broker.OUTBOUND, chunk)) == len(chunk)
                break
            except broker.PublishError:
                continue
        else:
            raise AssertionError("a batch was refused three times over two addresses")


def connected_port(publisher: broker.ConfirmingPublisher) -> int:
    return publisher._connection._impl.params.port


@pytest.mark.cluster
@pytest.mark.slow
def test_the_work_queues_are_quorum_queues_on_all_three_nodes(two_urls, cluster):
    connection = broker.connect(two_urls, "test-declare")
    broker.declare_queues(connection.channel(), two_urls)
    connection.close()
    queues = rabbit_cluster.queue_members(cluster[1], two_urls.NAMESPACE)
    assert len(queues) == 2 * len(broker.QUEUES)  # each queue and its .dlq
    expected = sorted(node.nodename for node in cluster)
    assert all((q["type"], q["members"]) == ("quorum", expected) for q in queues.values()), queues


@pytest.mark.cluster
@pytest.mark.slow
def test_a_consumer_and_a_publisher_keep_working_when_the_first_node_stops(two_urls, cluster):
    conn = resources.assignment_connection(two_urls, autocommit=True)
    operators = factories.add_operators(conn, 4, "US")
    factories.make_available(conn, Presence(resources.redis_client(two_urls), two_urls),
                             operators)
    before, after = ([factories.event() for _ in range(n)] for n in (2000, 1000))
    with broker.ConfirmingPublisher(two_urls, "test-failover-publisher") as publisher, \
            running(two_urls, "assignment", ASSIGNMENT_BATCH_SIZE=50) as [consumer]:
        publish(two_urls, publisher, before)
        assert connected_port(publisher) == FIRST.amqp_port
        eventually(lambda: stored(conn) > 0, message="the consumer stores events")
        rabbit_cluster.stop_node(FIRST)
        publish(two_urls, publisher, after)
        assert connected_port(publisher) == SECOND.amqp_port
        eventually(lambda: stored(conn) == 3000, timeout=180,
                   message="every event stored, before and after the stop")
        assert consumer.poll() is None, "the consumer process ended instead of failing over"
    duplicates = conn.execute(
        "SELECT count(*) AS n FROM (SELECT event_id FROM assignments GROUP BY event_id "
        "HAVING count(*) > 1) t").fetchone()["n"]
    assert duplicates == 0
    assert sum(factories.live_by_user(conn).values()) == 200  # 4 operators under a cap of 50
    assert factories.waiting_count(conn) == 2800
