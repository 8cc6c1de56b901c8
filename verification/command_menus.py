"""The command menus Telegram shows: one per scope and language (setMyCommands).

People in a private chat with the bot see /start, /login and /help; group
admins see the setup commands. Each menu is set in every shipped language:
English as the default (language_code ""), then each other language under its
ISO 639-1 code (Telegram's: "pt" for pt-br), so a person whose app speaks Persian
reads Persian descriptions. Set at each bot's start-up (a runtime bot task), so a
release that changes the commands updates the menus; a menu already as wanted is
left alone (compared with getMyCommands), so restarts cost one read per menu and
no writes. Nobody waits for this: P2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import structlog
from django.utils.translation import pgettext_lazy
from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllPrivateChats,
)
from telegram.error import TelegramError

from groups import languages
from verification.engine import Engine
from verification.priorities import call_at

logger = structlog.get_logger(__name__)

# Each menu's commands and their descriptions, translated when a menu is built.
# Translators: a command's description in Telegram's menu (at most 256 characters;
# Telegram shows about 40 of them).
PRIVATE_CHATS = (
    ("start", pgettext_lazy("command menu", "What Nezuko does, and adding it to a group")),
    ("login", pgettext_lazy("command menu", "A one-time link to your dashboard")),
    ("help", pgettext_lazy("command menu", "How to use Nezuko")),
    ("forget", pgettext_lazy("command menu", "Delete what Nezuko stored about you")),
)
GROUP_ADMINS = (
    ("protect", pgettext_lazy("command menu", "Require channels: /protect @channel")),
    ("unprotect", pgettext_lazy("command menu", "Stop requiring a channel, or switch off")),
    ("status", pgettext_lazy("command menu", "Protection, restrictions and growth here")),
    ("settings", pgettext_lazy("command menu", "Action, warning delay, fail mode, language")),
    ("doctor", pgettext_lazy("command menu", "Check the rights I need")),
    ("help", pgettext_lazy("command menu", "How to use Nezuko")),
)
SCOPES: tuple[tuple[BotCommandScope, tuple[tuple[str, Any], ...]], ...] = (
    (BotCommandScopeAllPrivateChats(), PRIVATE_CHATS),
    (BotCommandScopeAllChatAdministrators(), GROUP_ADMINS),
)


def menu(commands: tuple[tuple[str, Any], ...]) -> tuple[BotCommand, ...]:
    """The commands with their descriptions in the language active now."""
    return tuple(BotCommand(name, str(description)) for name, description in commands)


def menu_languages(only: Collection[str] | None = None) -> tuple[tuple[str, str], ...]:
    """(Telegram's language_code, our language) per menu: the default (English) first;
    `only` some of the shipped languages when given."""
    return tuple((code.split("-", 1)[0] if code != languages.DEFAULT else "", code)
                 for code in languages.shipped() if only is None or code in only)


def wanted(only: Collection[str] | None = None,
           ) -> list[tuple[BotCommandScope, str, tuple[BotCommand, ...]]]:
    """Every menu as it should be: (scope, language_code, commands), the default
    menus of every scope first (what people see until their language's is set)."""
    menus = []
    for language_code, language in menu_languages(only):
        with languages.speaking(language):
            menus += [(scope, language_code, menu(described)) for scope, described in SCOPES]
    return menus


def _as_pairs(commands) -> list[tuple[str, str]]:
    return [(c.command, c.description) for c in commands]


async def set_menus(bot: Bot, only: Collection[str] | None = None) -> int:
    """Set every menu that differs from `wanted()`; returns how many were set."""
    changed = 0
    for scope, language_code, commands in wanted(only):
        with call_at("P2"):
            current = await bot.get_my_commands(scope=scope, language_code=language_code)
        if _as_pairs(current) == _as_pairs(commands):
            continue
        with call_at("P2"):
            await bot.set_my_commands(commands, scope=scope, language_code=language_code)
        changed += 1
    return changed


def publisher(only: Collection[str] | None = None) -> Callable[[Engine, asyncio.Event],
                                                                Awaitable[None]]:
    """The start-up step setting the menus in every shipped language, or `only` some
    (the test world sets English alone unless a test asks for all: each menu is two
    calls at P2, paced like any other)."""
    async def publish(engine: Engine, stop: asyncio.Event) -> None:
        try:
            changed = await set_menus(engine.bot, only)
        except TelegramError as exc:
            # No menu is no reason to stop enforcing; the next start-up tries again.
            logger.warning("command_menus.failed", bot=engine.bot_pk, error=str(exc))
            return
        logger.info("command_menus.checked", bot=engine.bot_pk, changed=changed)
    return publish


# A start-up step of each bot (`RuntimeOptions.bot_tasks`): set the menus once.
publish = publisher()
