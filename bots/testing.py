"""pytest fixtures for the Telegram Bot API emulator (loaded by the root conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import telegram

from bots.emulator import Chat, TelegramEmulator, User


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


@dataclass
class Scene:
    """The usual cast: alice owns a group and a channel, bob is a member, carol a stranger.

    The bot is an admin of both chats (all rights but promoting), as Nezuko needs.
    """

    emulator: TelegramEmulator
    bot: User
    alice: User
    bob: User
    carol: User
    group: Chat
    channel: Chat

    def ptb_bot(self, bot: User | None = None) -> telegram.Bot:
        """python-telegram-bot's own Bot pointed at the emulator (use `async with`)."""
        token = (bot or self.bot).token
        assert token is not None
        return telegram.Bot(token, base_url=f"{self.emulator.api_url}/bot")


def make_scene(emu: TelegramEmulator, **group_options: Any) -> Scene:
    alice = emu.create_user("Alice", username="alice")
    bob = emu.create_user("Bob", username="bob")
    carol = emu.create_user("Carol", username="carol")
    bot = emu.create_bot(username="nezuko_bot")
    group = emu.create_supergroup("Cats", creator=alice, **group_options)
    channel = emu.create_channel("Cat News", creator=alice, username="catnews")
    emu.join(group, bob)
    emu.promote(group, bot, by=alice)
    emu.promote(channel, bot, by=alice)
    return Scene(emu, bot, alice, bob, carol, group, channel)


@pytest.fixture
def scene(emulator: TelegramEmulator) -> Scene:
    """`make_scene` on the `emulator` fixture."""
    return make_scene(emulator)
