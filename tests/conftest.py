"""Fixtures shared by every floor of tests.

Isolation: each test run gets a run id; each test that asks for `settings` gets its own
NAMESPACE (Redis keys, queue names) and its own two databases, cloned from templates that
were migrated once per run. Tests use the PostgreSQL, Redis and RabbitMQ on localhost (or
where the POSTGRES_*, REDIS_*, RABBITMQ_* variables point); where they do not answer and a
Docker engine does, testcontainers starts them; where neither answers, the run stops with a
line naming what is missing.
"""

from __future__ import annotations

import os
import uuid

import pytest

from common.adapters.presence import Presence
from common.resources import assignment_connection, redis_client
from tests import servers

RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def base_settings():
    """Settings of the servers for this run, with migrated template databases."""
    env = servers.ensure_servers()
    os.environ.update(env)
    return servers.prepare_templates(RUN_ID)


@pytest.fixture
def settings(base_settings, request):
    """Fresh databases, Redis prefix and queue names for one test."""
    test_id = f"{RUN_ID}_{uuid.uuid4().hex[:6]}"
    isolated = servers.isolated_settings(base_settings, test_id)
    yield isolated
    servers.tear_down(isolated)


@pytest.fixture
def conn(settings):
    """An autocommit connection to the test's assignment_service."""
    with assignment_connection(settings, autocommit=True) as connection:
        yield connection


@pytest.fixture
def presence(settings):
    """The test's Redis presence and counters, as a login or a heartbeat writes them."""
    client = redis_client(settings)
    yield Presence(client, settings)
    client.close()


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the run's flow runs (about 12 s to start, once)."""
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    from prefect.testing.utilities import prefect_test_harness

    # Generous: nine agents share two cores, and a 30 s start-up bound failed under load.
    with prefect_test_harness(server_startup_timeout=180):
        yield
