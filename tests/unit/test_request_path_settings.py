"""The request path's knobs refuse nonsense."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.settings import Settings


@pytest.mark.parametrize(("name", "value"), [
    ("SESSION_MAX_HOURS", 0), ("SESSION_MAX_HOURS", -1), ("SESSION_MAX_HOURS", 10_000),
    ("API_DB_POOL_SIZE", 0), ("API_DB_POOL_SIZE", 100_000),
    ("API_DB_POOL_TIMEOUT", 0), ("API_DB_POOL_TIMEOUT", "soon"),
])
def test_nonsense_is_refused(name, value):
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})


def test_defaults():
    settings = Settings()
    assert (settings.SESSION_MAX_HOURS, settings.API_DB_POOL_SIZE,
            settings.API_DB_POOL_TIMEOUT) == (12, 20, 5.0)
