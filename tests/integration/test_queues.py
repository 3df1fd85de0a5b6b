"""The queue declarations every process shares, and the broker's own safety net."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from common.adapters import broker
from tests import helpers
from tests.processes import ROOT, eventually


def test_every_process_declares_the_same_queues_without_disagreement(settings):
    for name in ("relay", "assignment", "inbound"):
        connection = broker.connect(settings, f"test-{name}")
        broker.declare_queues(connection.channel(), settings)
        connection.close()
    connection = broker.connect(settings, "test-passive")
    channel = connection.channel()
    for base in broker.QUEUES:
        channel.queue_declare(settings.name(base), passive=True)
        channel.queue_declare(broker.dlq_name(settings.name(base)), passive=True)
    connection.close()


def test_a_message_that_keeps_failing_is_dead_lettered_by_the_delivery_limit(settings):
    helpers.publish_raw(settings, broker.OUTBOUND, [b'{"crashes": "its consumer"}'])
    queue = settings.name(broker.OUTBOUND)
    connection = broker.connect(settings, "test-crashing-consumer")
    channel = connection.channel()
    for _ in range(settings.RABBITMQ_DELIVERY_LIMIT + 1):
        method, _, _ = eventually(lambda: (got := channel.basic_get(queue))[0] and got)
        channel.basic_nack(method.delivery_tag, requeue=True)
    connection.close()
    dead = eventually(lambda: helpers.drain(settings, broker.dlq_name(queue)))
    assert [body for body, _ in dead] == [b'{"crashes": "its consumer"}']
    assert helpers.drain(settings, queue) == []


def test_a_publish_to_a_queue_nobody_declared_is_refused_not_lost(settings):
    with (broker.ConfirmingPublisher(settings, "test-missing") as publisher,
          pytest.raises(broker.PublishError)):
        publisher.publish("no.such.queue", {"x": 1}, key="k")


def test_a_publisher_left_idle_past_its_heartbeat_keeps_its_connection(settings, caplog):
    """A publisher used now and then (the acks of a consumer whose batch waits on
    PostgreSQL, a dead-letter publisher while its consumer is busy) is kept alive between
    uses by its keeper: after a silence of four heartbeats it publishes on the same
    connection, and nothing was reset."""
    quick = settings.model_copy(update={"RABBITMQ_HEARTBEAT_SECONDS": 1})
    with broker.ConfirmingPublisher(quick, "test-idle", bases=[broker.ACK]) as publisher:
        publisher.publish(broker.ACK, {"n": 1}, key=1)
        first = publisher._connection
        with caplog.at_level(logging.INFO):
            time.sleep(4)  # the owner does not touch it: twice the heartbeat and more
            publisher.publish(broker.ACK, {"n": 2}, key=2)
        assert publisher._connection is first
    assert not [r for r in caplog.records if r.name.startswith("pika")
                and r.levelno >= logging.WARNING], caplog.text
    taken = helpers.drain(settings, settings.name(broker.ACK))
    assert sorted(json.loads(body)["n"] for body, _ in taken) == [1, 2]


def test_a_publisher_whose_idle_connection_was_closed_publishes_on_a_new_one(settings):
    """The broker closes an idle publisher's connection (here by rabbitmqctl, as a node
    restart or an operator would): the keeper notices, and the next publish opens a new
    connection instead of failing on the dead one."""
    name = f"test-idle-closed-{settings.NAMESPACE}"
    with broker.ConfirmingPublisher(settings, name, bases=[broker.ACK]) as publisher:
        publisher.publish(broker.ACK, {"n": 1}, key=1)
        first = publisher._connection
        closed = helpers.close_connections_named(name)
        assert closed == 1
        eventually(lambda: publisher._connection is not first, timeout=30, interval=0.2,
                   message="the keeper noticed the closed connection")
        publisher.publish(broker.ACK, {"n": 2}, key=2)
    taken = helpers.drain(settings, settings.name(broker.ACK))
    assert sorted(json.loads(body)["n"] for body, _ in taken) == [1, 2]


def test_tests_stop_with_a_line_naming_a_server_that_does_not_answer():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/integration/test_queues.py::test_every_process_declares_the_same_queues_"
         "without_disagreement"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "REDIS_PORT": "1", "DOCKER_HOST": "unix:///nonexistent"},
    )
    assert result.returncode == 3, result.stdout[-2000:]
    assert "Redis at localhost:1" in result.stdout + result.stderr
