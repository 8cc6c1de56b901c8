"""Command menus per scope (setMyCommands), set at start-up only when they differ."""

import json

import pytest

from verification import command_menus

pytestmark = pytest.mark.django_db(transaction=True)


def menu(world, scope_type: str) -> list[str]:
    """The commands the emulator shows in this scope, as Telegram would."""
    key = (world.scene.bot.id, json.dumps({"type": scope_type}, sort_keys=True), "")
    return [c["command"] for c in world.emu.bot_commands.get(key, [])]


async def test_it_sets_a_menu_per_scope_at_start_up(world):
    # (The world fixture waits for the bot's start-up step: two setMyCommands.)
    assert len(world.calls("setMyCommands")) == 2
    # Private chats: what anyone may send; group admins: the setup commands.
    assert menu(world, "all_private_chats") == ["start", "login", "help"]
    assert menu(world, "all_chat_administrators") == [
        "protect", "unprotect", "status", "settings", "doctor", "help"]
    # Ordinary members of a group see no menu of Nezuko's.
    assert menu(world, "default") == []


async def test_it_leaves_menus_alone_when_they_are_as_wanted(world):
    since = len(world.emu.calls)
    # A restart: the menus are unchanged, so nothing is written.
    assert await command_menus.set_menus(world.engine.bot) == 0
    assert not [c for c in world.emu.calls[since:] if c.method == "setMyCommands"]
    # Someone (another deployment, BotFather) changed one: only that one is set again.
    await world.engine.bot.delete_my_commands(
        scope=command_menus.BotCommandScopeAllPrivateChats())
    assert await command_menus.set_menus(world.engine.bot) == 1
    assert menu(world, "all_private_chats") == ["start", "login", "help"]
