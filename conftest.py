"""Fixtures shared by every app's tests."""

import pytest
from django.core.cache import cache

# The Bot API emulator fixtures (`emulator`, ...) live beside the emulator.
pytest_plugins = ["bots.testing"]


@pytest.fixture(autouse=True)
def _own_spool(settings, tmp_path):
    """Journals and spools are keyed by bot id, and emulator ids repeat between tests."""
    settings.NEZUKO_SPOOL_DIR = tmp_path / "spool"


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Process-wide caches must not leak answers from one test into the next.

    The Redis run's cache outlives tests too, and emulator ids repeat from test
    to test, so a membership cached by one test would answer for the next.
    """
    from groups.config import configs
    from verification.membership import memberships
    from verification.recorder import recorder

    cache.clear()
    configs.clear()
    memberships.clear_local()
    recorder._buffer.clear()
    yield
    configs.clear()
    memberships.clear_local()
