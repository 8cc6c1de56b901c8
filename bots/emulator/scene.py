"""The usual cast for tests, the demo and benchmarks (no pytest needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import telegram

from bots.emulator.emulator import TelegramEmulator
from bots.emulator.state import Chat, User


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
