"""Fixtures shared by every app's tests."""

import shutil
import subprocess
import uuid
import warnings
from pathlib import Path

import pytest
from django.core.cache import cache

LOCALE = Path(__file__).resolve().parent / "locale"

# The Bot API emulator fixtures (`emulator`, ...) live beside the emulator.
pytest_plugins = ["bots.testing"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """A bare `pytest` speaks every language too: each catalog newer than its .mo is
    compiled first, as `make messages` does (before any test loads a translation)."""
    stale = [po for po in sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))
             if not po.with_suffix(".mo").exists()
             or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime]
    if not stale:
        return
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        warnings.warn("msgfmt (gettext) is missing, so the translations are not compiled: "
                      "run `make messages` (it installs gettext) or apt-get install gettext.",
                      stacklevel=1)
        return
    for po in stale:
        # Our own files and the msgfmt on PATH: no untrusted input.
        subprocess.run([msgfmt, "--check-format", "-o", str(po.with_suffix(".mo")), str(po)],  # noqa: S603
                       check=True)


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


@pytest.fixture(autouse=True)
def _own_bus_keys(settings):
    """Each test's update bus keys (streams, polled marks, members) under its own prefix,
    deleted afterwards: streams are keyed by bot id and emulator ids repeat from test to
    test, so a polled mark left by one test would drop the next one's updates, and a
    member it left would be given partitions for 8 s. The Redis database is the whole
    run's: only this test's keys go, never the database."""
    settings.NEZUKO_BUS_PREFIX = f"nezuko:test:{uuid.uuid4().hex[:12]}:bus"
    yield
    if not settings.REDIS_URL:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1,
                                  socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{settings.NEZUKO_BUS_PREFIX}:*", count=500))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # a fault test's Redis may be away: its keys expire with their database
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _english_between_tests():
    """Every test starts in English. LocaleMiddleware activates a request's language in
    the thread that serves it and leaves it there (a server's next request activates its
    own); the test client serves requests in the test's thread, so a test asking for a
    Russian page would leave the next test's texts in Russian."""
    from django.utils import translation

    yield
    translation.deactivate()
