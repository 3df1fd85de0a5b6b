import subprocess
import sys

import pytest
from pydantic import ValidationError

from common.settings import Settings, describe_error


def test_defaults_point_at_localhost_with_the_original_names():
    s = Settings(_env_file=None)
    assert s.POSTGRES_DB_RELAY == "relay_service"
    assert s.POSTGRES_DB_ASSIGNMENT == "assignment_service"
    assert s.MAX_ASSIGNMENTS == 50 and s.SESSION_TTL == 300
    assert s.rabbitmq_url == "amqp://guest:guest@localhost:5672/%2F"
    assert s.name("events.outbound") == "events.outbound"


def test_namespace_prefixes_names():
    assert Settings(_env_file=None, NAMESPACE="run1").name("ack.queue") == "run1.ack.queue"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAX_ASSIGNMENTS", "-1"),
        ("ROUTING_MODE", "random"),
        ("POSTGRES_PORT", "70000"),
        ("REDIS_PORT", "0"),
        ("INACTIVE_USER_CRON", "every minute"),
        ("EXPIRED_EVENT_CRON", "61 * * * *"),
        ("CHECK_REVIEWED_CRON", "* * *"),
        ("SESSION_TTL", "abc"),
        ("NAMESPACE", "bad name/with slash"),
        ("APP_ENV", "prod"),
        ("API_MAX_BODY_BYTES", "0"),
        ("RABBITMQ_URL", "http://rabbit.example/"),
        ("REDIS_URL", "localhost:6379"),
        ("POSTGRES_SSLMODE", "yes"),
        ("PASSWORD_MIN_LENGTH", "4"),
    ],
)
def test_nonsense_is_refused_naming_the_variable(variable, value):
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **{variable: value})
    line = describe_error(caught.value)
    assert line.startswith(f"invalid setting {variable}")
    # A URL may carry a password: its value is never repeated; other values are.
    assert (value in line) != variable.endswith("_URL")


def test_a_refused_url_does_not_show_the_password_inside_it():
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, RABBITMQ_URL="amqp://events:hunter2@a/,http://events:hunter2@b/")
    line = describe_error(caught.value)
    assert "hunter2" not in line and "item 2 of 2" in line


def test_prefect_style_cron_with_seconds_at_the_end_is_accepted():
    assert Settings(_env_file=None, EXPIRED_EVENT_CRON="* * * * * */15").EXPIRED_EVENT_CRON


def test_a_process_refuses_to_start_with_one_line_naming_the_variable():
    result = subprocess.run(
        [sys.executable, "-m", "common.adapters.migrations"],
        env={"MAX_ASSIGNMENTS": "-5", "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MAX_ASSIGNMENTS" in lines[0]


def test_tls_and_passwords_reach_the_clients():
    from common.resources import rabbitmq_parameters, redis_client

    s = Settings(_env_file=None, POSTGRES_SSLMODE="verify-full", REDIS_PASSWORD="pw",
                 REDIS_URL="rediss://redis.example:6380/1",
                 RABBITMQ_URL="amqps://events:pw@rabbit.example/")
    assert "sslmode='verify-full'" in s.relay_dsn
    pool = redis_client(s).connection_pool
    assert pool.connection_class.__name__ == "SSLConnection"
    assert pool.connection_kwargs["password"] == "pw"
    [params] = rabbitmq_parameters(s)
    assert params.ssl_options.server_hostname == "rabbit.example" and params.port == 5671
