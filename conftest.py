"""Fixtures shared by every app's tests."""

import pytest
from django.core.cache import cache

# The Bot API emulator fixtures (`emulator`, ...) live beside the emulator.
pytest_plugins = ["bots.testing"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty cache: on the Redis run the cache outlives tests,
    and emulator ids repeat from test to test, so a stale membership would leak across."""
    cache.clear()
    yield
