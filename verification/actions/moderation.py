"""Restricting, kicking and lifting restrictions."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog
from django.db import DatabaseError
from django.template.loader import render_to_string
from telegram import ChatPermissions
from telegram.error import BadRequest, TelegramError

from bots.heartbeat import is_network_error
from bots.ratelimit import RateLimitDropped
from groups import owed
from groups.config import GroupConfig
from groups.models import GroupMember
from groups.services import health, ledger_reads, ledger_writes
from verification.actions._call import _p
from verification.actions.messages import delete_message, send
from verification.actions.reads import default_permissions, get_member
from verification.actions.warning_messages import unwarn, warn
from verification.decisions import RejectSenderChat, Restrict, Unmute
from verification.models import Outcome
from verification.updates import Person

if TYPE_CHECKING:
    from verification.engine import Engine

logger = structlog.get_logger(__name__)



async def restrict(engine: Engine, d: Restrict, config: GroupConfig, *,
                   started: float | None, cache_hit: bool | None) -> None:
    """Delete the message, restrict (or kick) the sender, warn once, record it."""
    if d.delete_message_id is not None:
        await delete_message(engine, d.chat_id, d.delete_message_id)
    key = (d.chat_id, d.person.id)
    if key in engine.restricted and d.reason == "message":
        # Already restricted and warned: a late message or an edit.
        return
    outcome = await _hold(engine, d, config)
    if outcome is None:
        return
    if d.warn and outcome != Outcome.KICKED:
        await warn(engine, config, d.person, d.missing, d.thread_id)
    engine.record(outcome, config, d.person, missing=d.missing, started=started,
                  cache_hit=cache_hit, detail=d.reason)


async def _muted_by_us_already(engine: Engine, d: Restrict, config: GroupConfig) -> bool:
    """An update handled again after a crash must not restrict twice.

    The ledger knows a restriction that is in place (Telegram keeps it through a
    leave and rejoin). One that was under way when the last process died (or is
    owed) may or may not have happened: Telegram says.
    """
    if (d.chat_id, d.person.id) in engine.restricted:
        return True
    try:
        entry = await ledger_reads.aledger_entry(config.pk, d.person.id)
    except DatabaseError:
        return False  # no ledger now: restricting again is harmless, missing one is not
    if entry is None:
        return False
    if entry.restricted_by_nezuko:
        return True
    if entry.owed_action == GroupMember.Owed.RESTRICT:
        member = await get_member(engine, d.chat_id, d.person.id)
        return member is not None and member.status == "restricted" and \
            not getattr(member, "can_send_messages", True)
    return False


async def _hold(engine: Engine, d: Restrict, config: GroupConfig) -> str | None:
    """Apply the group's action; the Outcome, or None when Telegram refused."""
    if d.action == "mute":
        if await _muted_by_us_already(engine, d, config):
            engine.restricted.add((d.chat_id, d.person.id))
            await _record_restricted(config, d)
            return Outcome.RESTRICTED
        await owed.aintend(config.pk, d.person.id, GroupMember.Owed.RESTRICT,
                           name=d.person.name, username=d.person.username)
    try:
        with _p("P1"):
            if d.action == "mute":
                await engine.bot.restrict_chat_member(
                    d.chat_id, d.person.id, ChatPermissions.no_permissions(),
                    use_independent_chat_permissions=True,
                )
            elif d.action == "kick":
                await engine.bot.ban_chat_member(d.chat_id, d.person.id)
                # Unban at once: "kick" removes, it does not ban for ever.
                await engine.bot.unban_chat_member(d.chat_id, d.person.id, only_if_banned=True)
    except BadRequest as exc:
        await owed.asettle(config.pk, d.person.id)  # refused: nothing under way any more
        await _refused(engine, d, config, exc)
        return None
    except TelegramError as exc:
        logger.warning("restrict.failed", chat_id=d.chat_id, user_id=d.person.id,
                       error=str(exc))
        engine.record(Outcome.ERROR, config, d.person, missing=d.missing,
                      detail=f"restrict failed: {exc}")
        await _owe(config, d.person, "restrict", exc)
        return None
    if d.action == "mute":
        engine.restricted.add((d.chat_id, d.person.id))
        await _record_restricted(config, d)
        return Outcome.RESTRICTED
    if d.action == "kick":
        await ledger_writes.aset_member_status(config.pk, d.person.id, "kicked")
        return Outcome.KICKED
    return Outcome.DELETED


async def _record_restricted(config: GroupConfig, d: Restrict) -> None:
    """The ledger: ours now (and whatever was owed or under way is settled)."""
    await ledger_writes.amark_restricted(config.pk, d.person.id, name=d.person.name,
                                    username=d.person.username, reason=d.reason)


async def _owe(config: GroupConfig, person: Person, action: str, exc: TelegramError) -> None:
    """Telegram did not carry it out for a passing reason: retry it until done or moot
    (verification/owed.py). A refusal (BadRequest, Forbidden) is not owed: it would
    fail again until someone fixes the bot's rights, which /doctor reports."""
    # Failures that pass: 5xx, timeouts, the network, a 429 the limiter gave up on.
    if not (is_network_error(exc) or isinstance(exc, RateLimitDropped)):
        await owed.asettle(config.pk, person.id)  # nothing under way, nothing owed
        return
    await owed.aowe(config.pk, person.id, action, error=str(exc), name=person.name,
                    username=person.username)


async def _refused(engine: Engine, d: Restrict, config: GroupConfig, exc: BadRequest) -> None:
    text = exc.message.lower()
    if "administrator" in text or "owner" in text or "creator" in text:
        # An admin our cached list did not know yet: refresh it, never restrict.
        engine.refresh_admins_soon(config, force=True)
        return
    logger.warning("restrict.refused", chat_id=d.chat_id, user_id=d.person.id, error=exc.message)
    engine.record(Outcome.ERROR, config, d.person, missing=d.missing,
                  detail=f"restrict refused: {exc.message}")
    if "rights" in text or "not enough" in text or "admin" in text:
        await health.arecord_bot_rights(engine.bot_pk, config.chat_id, "supergroup",
                                          "member", {})


async def reject_sender_chat(engine: Engine, d: RejectSenderChat, config: GroupConfig) -> None:
    """Posting as one's own channel is no bypass: delete, and say why (throttled)."""
    await delete_message(engine, d.chat_id, d.message_id)
    now = time.monotonic()
    if now - engine.sender_chat_notices.get(d.chat_id, 0.0) < 60:
        return
    engine.sender_chat_notices[d.chat_id] = now
    text = render_to_string("verification/telegram/sender_chat.html",
                            {"group": config.title}).strip()
    message = await send(engine, d.chat_id, text, thread_id=d.thread_id, level="P1")
    if message is not None and config.warning_delete_after:
        engine.delete_later(d.chat_id, message, config.warning_delete_after)


async def unmute(engine: Engine, d: Unmute, config: GroupConfig, *,
                 started: float | None = None, restore: bool = True) -> bool:
    """Restore the group's default permissions for a user Nezuko restricted.

    `restore=False` only takes them off their warning (delete-only groups).
    """
    if restore:
        try:
            permissions = await default_permissions(engine, d.chat_id)
            with _p("P0"):
                await engine.bot.restrict_chat_member(
                    d.chat_id, d.person.id, permissions, use_independent_chat_permissions=True
                )
        except TelegramError as exc:
            logger.warning("unmute.failed", chat_id=d.chat_id, user_id=d.person.id,
                           error=str(exc))
            engine.record(Outcome.ERROR, config, d.person, detail=f"unmute failed: {exc}")
            await _owe(config, d.person, "unmute", exc)
            return False
    engine.restricted.discard((d.chat_id, d.person.id))
    await unwarn(engine, config, d.person.id)
    await ledger_writes.aclear_restriction(config.pk, d.person.id)
    engine.record(Outcome.UNMUTED, config, d.person, started=started, detail=d.reason)
    return True


async def lift_all(engine: Engine, config: GroupConfig, user_ids: list[int]) -> int:
    """Protection switched off: lift every restriction Nezuko placed here."""
    lifted = 0
    for user_id in user_ids:
        if await unmute(engine, Unmute(config.chat_id, Person(user_id, ""), "unprotect"),
                        config):
            lifted += 1
    return lifted


async def ban(engine: Engine, config: GroupConfig, person: Person) -> bool:
    """Remove and ban (an owner's decision from the dashboard)."""
    try:
        with _p("P1"):
            await engine.bot.ban_chat_member(config.chat_id, person.id)
    except TelegramError as exc:
        logger.warning("ban.failed", chat_id=config.chat_id, user_id=person.id, error=str(exc))
        return False
    engine.restricted.discard((config.chat_id, person.id))
    await ledger_writes.aset_member_status(config.pk, person.id, "kicked")
    engine.record(Outcome.KICKED, config, person, detail="banned from the dashboard")
    return True


async def unban(engine: Engine, config: GroupConfig, person: Person) -> bool:
    """Lift a ban; the user may join again (and is checked when they do)."""
    try:
        with _p("P0"):
            await engine.bot.unban_chat_member(config.chat_id, person.id, only_if_banned=True)
    except TelegramError as exc:
        logger.warning("unban.failed", chat_id=config.chat_id, user_id=person.id, error=str(exc))
        return False
    await ledger_writes.aset_member_status(config.pk, person.id, "left")
    return True
