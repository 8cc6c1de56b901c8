"""Fixtures shared by every app's tests."""

import pytest
from django.core.cache import cache

# The Bot API emulator fixtures (`emulator`, ...) live beside the emulator.
pytest_plugins = ["bots.testing"]


@pytest.fixture(autouse=True)
def _fresh_caches(settings, tmp_path):
    """Process-wide caches must not leak answers from one test into the next.

    The Redis run's cache outlives tests too, and emulator ids repeat from test
    to test, so a membership cached by one test would answer for the next.
    The disk spools (ledger, events, rollups) and the bots' update journals live in
    the test's own directory: they are keyed by bot id too.
    """
    from analytics.folding import buffer
    from groups.config import configs
    from groups.ledger import writer
    from verification.membership import memberships
    from verification.recorder import recorder

    settings.NEZUKO_SPOOL_DIR = tmp_path / "spool"
    cache.clear()
    configs.clear()
    memberships.clear_local()
    recorder._buffer.clear()
    yield
    configs.clear()
    memberships.clear_local()
    for spooled in (writer, recorder, buffer):
        spooled.close_spool()
