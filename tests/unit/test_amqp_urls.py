"""RABBITMQ_URL with several broker addresses: parsed in order, refused with a clear line, and
turned into one set of pika parameters per address (no server needed)."""

import pytest
from pydantic import ValidationError

from common.adapters import broker
from common.adapters.amqp import rabbitmq_parameters
from common.production import unsafe_reasons
from common.settings import Settings, describe_error

TWO = "amqp://events:pw@rabbit-a:5681/%2F, amqps://events:pw@rabbit-b/prod"


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_a_comma_separated_list_keeps_its_order_without_spaces():
    s = settings(RABBITMQ_URL=TWO)
    assert s.rabbitmq_urls == ("amqp://events:pw@rabbit-a:5681/%2F",
                               "amqps://events:pw@rabbit-b/prod")
    assert s.rabbitmq_url == "amqp://events:pw@rabbit-a:5681/%2F"


def test_one_url_and_the_parts_still_give_one_address():
    assert settings(RABBITMQ_URL="amqp://u:p@h:1/").rabbitmq_urls == ("amqp://u:p@h:1/",)
    assert settings(RABBITMQ_HOST="h", RABBITMQ_PORT=7).rabbitmq_urls == (
        "amqp://guest:guest@h:7/%2F",)


@pytest.mark.parametrize(("value", "why"), [
    ("amqp://a/,http://b/", "item 2 of 2 must start with amqp:// or amqps:// (TLS), not http://"),
    ("amqp://a/,,amqp://b/", "item 2 of 3 is empty (a stray comma?)"),
    ("amqp://a/,", "item 2 of 2 is empty (a stray comma?)"),
    ("rabbit-a:5672", "the URL must start with amqp:// or amqps:// (TLS), not no scheme"),
    ("amqp://a:5672/,amqp://b:port/", "item 2 of 2 has a port that is not a number"),
    ("amqp://a:99999/", "the URL has a port that is not a number from 1 to 65535"),
])
def test_a_bad_item_is_refused_by_its_position(value, why):
    with pytest.raises(ValidationError) as caught:
        settings(RABBITMQ_URL=value)
    line = describe_error(caught.value)
    assert line.startswith("invalid setting RABBITMQ_URL (value not shown)") and why in line


def test_every_address_gets_its_own_parameters_and_tls_host():
    first, second = rabbitmq_parameters(settings(RABBITMQ_URL=TWO))
    assert (first.host, first.port, first.ssl_options) == ("rabbit-a", 5681, None)
    assert (second.host, second.port, second.virtual_host) == ("rabbit-b", 5671, "prod")
    assert second.ssl_options.server_hostname == "rabbit-b"


def test_connection_parameters_name_every_address_and_take_overrides():
    parameters = broker.connection_parameters(settings(RABBITMQ_URL=TWO), "relay:1",
                                              socket_timeout=3)
    assert [p.port for p in parameters] == [5681, 5671]
    for params in parameters:
        assert params.client_properties == {"connection_name": "relay:1"}
        assert (params.heartbeat, params.connection_attempts, params.socket_timeout) == (30, 1, 3)


def test_a_misspelt_override_is_refused_instead_of_ignored():
    with pytest.raises(TypeError, match="socket_timout"):
        broker.connection_parameters(settings(), "x", socket_timout=3)


def test_production_refuses_guest_on_any_address():
    s = settings(RABBITMQ_URL="amqp://events:pw@a/,amqp://guest:guest@b/",
                 CONSOLE_SECRET="a-long-enough-production-secret")
    assert unsafe_reasons(s, accounts=False) == [
        "RabbitMQ uses the user guest (set RABBITMQ_USER/RABBITMQ_URL)"]
    assert unsafe_reasons(s.model_copy(update={"RABBITMQ_URL": "amqp://events:pw@a/"}),
                          accounts=False) == []


def test_a_comma_in_a_password_is_written_percent_encoded():
    first, second = rabbitmq_parameters(settings(RABBITMQ_URL="amqp://u:a%2Cb@h1/,amqp://u:p@h2/"))
    assert (first.credentials.password, first.host, second.host) == ("a,b", "h1", "h2")
