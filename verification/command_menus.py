"""The command menus Telegram shows: one per scope (setMyCommands).

People in a private chat with the bot see /start, /login and /help; group
admins see the setup commands. Set at each bot's start-up (a runtime bot task),
so a release that changes the commands updates the menus; a menu already as
wanted is left alone (compared with getMyCommands), so restarts cost two reads
per scope and no writes. Nobody waits for this: P2.
"""

from __future__ import annotations

import asyncio

import structlog
from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllPrivateChats,
)
from telegram.error import TelegramError

from verification.engine import Engine
from verification.priorities import call_at

logger = structlog.get_logger(__name__)

PRIVATE_CHATS = (
    BotCommand("start", "What Nezuko does, and adding it to a group"),
    BotCommand("login", "A one-time link to your dashboard"),
    BotCommand("help", "How to use Nezuko"),
)
GROUP_ADMINS = (
    BotCommand("protect", "Require channels: /protect @channel"),
    BotCommand("unprotect", "Stop requiring a channel, or switch off"),
    BotCommand("status", "Protection, restrictions and growth here"),
    BotCommand("settings", "Action, warning delay, fail mode"),
    BotCommand("doctor", "Check the rights I need"),
    BotCommand("help", "How to use Nezuko"),
)
MENUS: tuple[tuple[BotCommandScope, tuple[BotCommand, ...]], ...] = (
    (BotCommandScopeAllPrivateChats(), PRIVATE_CHATS),
    (BotCommandScopeAllChatAdministrators(), GROUP_ADMINS),
)


def _as_pairs(commands) -> list[tuple[str, str]]:
    return [(c.command, c.description) for c in commands]


async def set_menus(bot: Bot) -> int:
    """Set every scope's menu that differs from `MENUS`; returns how many were set."""
    changed = 0
    for scope, commands in MENUS:
        with call_at("P2"):
            current = await bot.get_my_commands(scope=scope)
        if _as_pairs(current) == _as_pairs(commands):
            continue
        with call_at("P2"):
            await bot.set_my_commands(commands, scope=scope)
        changed += 1
    return changed


async def publish(engine: Engine, stop: asyncio.Event) -> None:
    """A start-up step of each bot (`RuntimeOptions.bot_tasks`): set the menus once."""
    try:
        changed = await set_menus(engine.bot)
    except TelegramError as exc:
        # No menu is no reason to stop enforcing; the next start-up tries again.
        logger.warning("command_menus.failed", bot=engine.bot_pk, error=str(exc))
        return
    logger.info("command_menus.checked", bot=engine.bot_pk, changed=changed)
