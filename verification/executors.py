"""What the dashboard's commands (BotCommand rows) do, for `bots.command_queue`.

`executors_for(engine)` maps every `BotCommand.Kind` to an executor
`async def (command, application) -> dict` bound to that bot's engine. The
payload the dashboard writes is `{"group_id", "chat_id", "user_id"}`
(`user_id` absent for group-wide kinds). An executor raises `CommandFailed`
with a message fit for the dashboard; its dict becomes the command's result.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from telegram.ext import Application

from bots.models import BotCommand
from groups import rights
from groups.config import GroupConfig
from groups.services import ledger_reads
from verification import actions, telegram_reads
from verification.decisions import (
    Ledger,
    Restrict,
    Unmute,
    decide_recheck,
    restriction_is_ours,
)
from verification.engine import Engine
from verification.handlers import engine_of
from verification.updates import Person

Executor = Callable[[BotCommand, Application], Awaitable[dict[str, Any] | None]]
KindFunction = Callable[[Engine, GroupConfig, dict], Awaitable[dict[str, Any]]]
WARM_LIMIT = 500


class CommandFailed(Exception):
    """The command could not be carried out; the message says why."""


def executors_for(engine: Engine) -> dict[str, Executor]:
    """Executors bound to one engine."""
    return {str(kind): functools.partial(_run, function, engine)
            for kind, function in _KINDS.items()}


def _by_application(function: KindFunction) -> Executor:
    async def executor(command: BotCommand, application: Application) -> dict[str, Any]:
        return await _run(function, engine_of(application), command, application)

    return executor


async def _run(function: KindFunction, engine: Engine, command: BotCommand,
               application: Application) -> dict[str, Any]:
    config = await _group(engine, command.payload or {})
    # Rights are read now, not when the command was queued: someone demoted in
    # between does not get their unban.
    refusal = await rights.acommand_refusal(command, config.pk, config.title or str(config.chat_id))
    if refusal is not None:
        raise CommandFailed(f"Refused: {refusal.message}")
    return await function(engine, config, command.payload or {})


async def _group(engine: Engine, payload: dict) -> GroupConfig:
    chat_id = payload.get("chat_id")
    if not isinstance(chat_id, int):
        raise CommandFailed("The command names no group.")
    config = await engine.config(chat_id)
    if config is None:
        raise CommandFailed("This bot does not protect that group.")
    return config


def _person(payload: dict) -> Person:
    user_id = payload.get("user_id")
    if not isinstance(user_id, int):
        raise CommandFailed("The command names no user.")
    return Person(user_id, "")


async def unmute(engine: Engine, config: GroupConfig, payload: dict) -> dict[str, Any]:
    """An owner's explicit unmute lifts the restriction whoever placed it."""
    person = _person(payload)
    done = await actions.unmute(engine, Unmute(config.chat_id, person, "dashboard"), config)
    if not done.ok:
        raise CommandFailed("Telegram refused the unmute (see the group's attention flag).")
    return {"unmuted": True}


async def ban(engine: Engine, config: GroupConfig, payload: dict) -> dict[str, Any]:
    if not await actions.ban(engine, config, _person(payload)):
        raise CommandFailed("Telegram refused the ban.")
    return {"banned": True}


async def unban(engine: Engine, config: GroupConfig, payload: dict) -> dict[str, Any]:
    if not await actions.unban(engine, config, _person(payload)):
        raise CommandFailed("Telegram refused the unban.")
    return {"unbanned": True}


async def recheck(engine: Engine, config: GroupConfig, payload: dict) -> dict[str, Any]:
    """Ask Telegram afresh; lift Nezuko's restriction or place one, as the rules say."""
    person = _person(payload)
    if not config.protecting:
        raise CommandFailed("Protection is off in this group.")
    answers, _ = await telegram_reads.check(engine, person.id, config.channels,
                                            fresh=tuple(c.chat_id for c in config.channels))
    entry = await ledger_reads.aledger_entry(config.pk, person.id)
    ours = restriction_is_ours(Ledger.of(entry),
                               restricted_here=(config.chat_id, person.id) in engine.restricted)
    decision = decide_recheck(config, person, answers, restricted_by_nezuko=ours)
    if isinstance(decision, Restrict | Unmute):
        await actions.apply(engine, decision, config, cache_hit=False)
    if isinstance(decision, Unmute):
        return {"subscribed": True, "unmuted": True}
    missing = [c.chat_id for c in config.channels if answers.get(c.chat_id) is not True]
    if not missing:
        return {"subscribed": True, "unmuted": False}
    return {"subscribed": False, "missing_channel_ids": missing}


async def refresh_admins(engine: Engine, config: GroupConfig, payload: dict) -> dict[str, Any]:
    if not await telegram_reads.fetch_admins(engine, config):
        raise CommandFailed("Telegram did not return the admin list.")
    fresh = await engine.config(config.chat_id)
    return {"admins": len(fresh.admin_ids) if fresh else 0}


async def warm_cache(engine: Engine, config: GroupConfig, payload: dict) -> dict[str, Any]:
    """Ask about the group's known members at bulk priority, so later messages hit."""
    user_ids = await ledger_reads.aknown_member_ids(config.pk, limit=WARM_LIMIT)
    known = 0
    for user_id in user_ids:
        answers, _ = await telegram_reads.check(engine, user_id, config.channels, level="P2")
        known += all(v is not None for v in answers.values())
    return {"members": len(user_ids), "answered": known}


_KINDS = {
    BotCommand.Kind.UNMUTE: unmute,
    BotCommand.Kind.BAN: ban,
    BotCommand.Kind.UNBAN: unban,
    BotCommand.Kind.RECHECK: recheck,
    BotCommand.Kind.REFRESH_ADMINS: refresh_admins,
    BotCommand.Kind.WARM_CACHE: warm_cache,
}
# For the runtime's RuntimeOptions.executors: each finds its bot's engine from
# the Application the command queue passes.
EXECUTORS: dict[str, Executor] = {str(k): _by_application(f) for k, f in _KINDS.items()}
