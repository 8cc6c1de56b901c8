"""Helpers shared by the runtime tests (supervisor, locks, command queue, runbot)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from bots.models import BotInstance


def on_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def postgres_only(test: Callable) -> Callable:
    """Tests that need PostgreSQL carry the marker and skip cleanly on SQLite runs."""
    test = pytest.mark.postgres(test)
    return pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL (DATABASE_URL)")(test)


def make_bot(token: str, **fields: object) -> BotInstance:
    bot = BotInstance(**fields)
    bot.set_token(token)
    bot.save()
    return bot


@pytest.fixture
async def close_db_threads() -> AsyncIterator[None]:
    """Close the connection the ORM opened in asgiref's thread, or PostgreSQL cannot
    drop the test database ("being accessed by other users")."""
    yield
    await sync_to_async(connections.close_all)()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Await `check()` until it is true: for conditions another process brings about.

    `within` guards against a hang; it is not a claim about speed.
    """
    async with asyncio.timeout(within):
        # Polling: the condition lives in another process or server, not an Event here.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
