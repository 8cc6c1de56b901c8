"""pytest fixtures for the Telegram Bot API emulator (loaded by the root conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bots.emulator import TelegramEmulator
from bots.emulator.scene import Scene, make_scene

__all__ = ["Scene", "emulator", "make_scene", "scene"]


@pytest.fixture
async def emulator(settings: Any) -> AsyncIterator[TelegramEmulator]:
    """A started emulator on a free port; `settings.TELEGRAM_API_URL` points at it.

    Webhook retries are quick (50 ms) so a test of a failing webhook does not wait.
    """
    emu = TelegramEmulator(webhook_retry_delay=0.05)
    await emu.start()
    settings.TELEGRAM_API_URL = emu.api_url
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def scene(emulator: TelegramEmulator) -> Scene:
    """`make_scene` on the `emulator` fixture."""
    return make_scene(emulator)
