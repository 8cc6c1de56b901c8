"""Command menus per scope and language (setMyCommands), set at start-up only when
they differ."""

import json

import pytest

from groups import languages
from verification import command_menus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def menu_languages():
    """This module's world sets the menus in every shipped language, as runbot does."""
    return None


def menu(world, scope_type: str, language_code: str = "") -> list[dict]:
    """The commands the emulator shows in this scope and language, as Telegram would."""
    key = (world.scene.bot.id, json.dumps({"type": scope_type}, sort_keys=True), language_code)
    return world.emu.bot_commands.get(key, [])


def names(world, scope_type: str, language_code: str = "") -> list[str]:
    return [c["command"] for c in menu(world, scope_type, language_code)]


async def test_it_sets_a_menu_per_scope_at_start_up(world):
    # (The world fixture waits for the bot's start-up step: a setMyCommands per scope
    # and shipped language.)
    assert len(world.calls("setMyCommands")) == 2 * len(languages.shipped())
    # Private chats: what anyone may send; group admins: the setup commands.
    assert names(world, "all_private_chats") == ["start", "login", "help", "forget"]
    assert names(world, "all_chat_administrators") == [
        "protect", "unprotect", "status", "settings", "doctor", "help"]
    # Ordinary members of a group see no menu of Nezuko's.
    assert names(world, "default") == []


async def test_every_shipped_language_gets_its_own_translated_menus(world):
    english = {scope: menu(world, scope) for scope in ("all_private_chats",
                                                        "all_chat_administrators")}
    for language in languages.shipped():
        if language == languages.DEFAULT:
            continue
        # Telegram takes ISO 639-1 codes: pt-br's menus are set for "pt".
        code = language.split("-")[0]
        calls = [c for c in world.calls("setMyCommands")
                 if c.params.get("language_code") == code]
        assert len(calls) == 2, language
        with languages.speaking(language):
            expected = {scope: [{"command": c.command, "description": c.description}
                                for c in command_menus.menu(described)]
                        for scope, described in zip(("all_private_chats",
                                                     "all_chat_administrators"),
                                                    (command_menus.PRIVATE_CHATS,
                                                     command_menus.GROUP_ADMINS), strict=True)}
        for scope, commands in expected.items():
            assert menu(world, scope, code) == commands, (language, scope)
            # Same commands, described in the language: a missing translation fails here.
            assert [c["command"] for c in commands] == [c["command"] for c in english[scope]]
            assert [c["description"] for c in commands] != [
                c["description"] for c in english[scope]], (language, scope)
            assert all(len(c["description"]) <= 256 for c in commands)


async def test_it_leaves_menus_alone_when_they_are_as_wanted(world):
    since = len(world.emu.calls)
    # A restart: the menus are unchanged, so nothing is written.
    assert await command_menus.set_menus(world.engine.bot) == 0
    assert not [c for c in world.emu.calls[since:] if c.method == "setMyCommands"]
    # Someone (another deployment, BotFather) changed one: only that one is set again.
    await world.engine.bot.delete_my_commands(
        scope=command_menus.BotCommandScopeAllPrivateChats(), language_code="fa")
    assert await command_menus.set_menus(world.engine.bot) == 1
    assert names(world, "all_private_chats", "fa") == ["start", "login", "help", "forget"]
