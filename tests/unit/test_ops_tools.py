"""Settings of the operations tools, and the compose reader of the compose-stack test."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.settings import Settings
from consumers import dlq, dlq_policy
from tests.e2e import compose


@pytest.mark.parametrize("variable, value", [
    ("DLQ_MAX_LENGTH", 0), ("RETENTION_DAYS", 0), ("RETENTION_DAYS", -5),
    ("RETENTION_BATCH_SIZE", 0), ("PRUNE_CRON", "daily at three"),
])
def test_nonsense_operations_settings_are_refused(variable, value):
    with pytest.raises(ValidationError, match=variable):
        Settings(_env_file=None, **{variable: value})


def test_the_operations_defaults_are_the_documented_ones():
    settings = Settings(_env_file=None)
    assert (settings.DLQ_MAX_LENGTH, settings.RETENTION_DAYS, settings.PRUNE_CRON) == (
        100_000, 90, "30 3 * * *")


@pytest.mark.parametrize("name, base", [
    ("events.outbound", "events.outbound"), ("events.inbound.dlq", "events.inbound"),
    ("ack.queue", "ack.queue"),
])
def test_a_queue_is_named_by_its_base_with_or_without_dlq(name, base):
    assert dlq.resolve(name) == base


@pytest.mark.parametrize("name", ["events", "events.outbound.dlq.dlq", "", "ack.queue.DLQ"])
def test_an_unknown_queue_name_is_refused(name):
    with pytest.raises(dlq.DeadLetterError, match="unknown queue"):
        dlq.resolve(name)


def test_the_policy_matches_the_three_dlqs_of_its_namespace_only():
    import re

    pattern = re.compile(dlq_policy.pattern(Settings(_env_file=None, NAMESPACE="t1")))
    assert pattern.match("t1.events.outbound.dlq") and pattern.match("t1.ack.queue.dlq")
    assert not pattern.match("t1.events.outbound")
    assert not pattern.match("t2.events.outbound.dlq")
    assert not pattern.match("events.outbound.dlq")


def test_compose_interpolation_follows_compose():
    env = {"SET": "x", "EMPTY": ""}
    assert compose.interpolate("${SET:-d}/${EMPTY:-d}/${UNSET:-d}", env) == "x/d/d"
    assert compose.interpolate("${EMPTY-d}/${UNSET-d}/${SET}/$$HOME", env) == "/d/x/$HOME"


def test_service_hosts_become_local_and_nothing_else_changes():
    service = {"environment": {"POSTGRES_HOST": "postgres", "POSTGRES_USER": "postgres",
                               "PREFECT_API_URL": "http://prefect-server:4200/api",
                               "API_URL": "http://api:3000", "OTHER": "redis"}}
    local = compose.local_environment(service, {"postgres", "prefect-server", "api", "redis"})
    assert local == {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_USER": "postgres",
                     "PREFECT_API_URL": "http://127.0.0.1:4200/api",
                     "API_URL": "http://127.0.0.1:3000", "OTHER": "redis"}
    assert compose.remap_ports(local, {4200: 5555})["PREFECT_API_URL"] == \
        "http://127.0.0.1:5555/api"
    assert compose.remap_ports(["--port", "4200", "14200"], {4200: 5555}) == \
        ["--port", "5555", "14200"]


@pytest.mark.parametrize("url, local", [
    ("amqp://guest:guest@localhost/", True), ("amqp://guest:guest@127.0.0.1:5672/", True),
    # Other nodes started on this machine (bench.rabbit_cluster): rabbitmqctl would set the
    # policy on the machine's own node instead.
    ("amqp://guest:guest@127.0.0.1:5681/,amqp://guest:guest@127.0.0.1:5682/", False),
    ("amqp://events:pw@rabbit-1/,amqp://events:pw@rabbit-2/", False),
])
def test_rabbitmqctl_sets_the_policy_only_when_the_broker_is_this_machines_node(url, local):
    assert dlq_policy._broker_is_local(Settings(_env_file=None, RABBITMQ_URL=url)) is local


def test_the_policy_goes_to_the_virtual_host_of_the_broker_address():
    assert [dlq_policy.vhost(url) for url in ("amqp://a", "amqp://a/", "amqp://a/prod",
                                               "amqp://a/%2F", "amqp://a/team%2Fa")] == [
        "/", "/", "prod", "/", "team/a"]
