"""Restricting, kicking and lifting restrictions: the Bot API calls and their outcome.

Each function makes its calls and returns a `Done`; it writes nothing down.
`actions.apply` hands the outcome to `verification.recording`, the one place
that turns it into ledger rows and events.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog
from django.template.loader import render_to_string
from telegram import ChatPermissions
from telegram.error import BadRequest, TelegramError

from groups import languages
from groups.config import GroupConfig
from verification import wording
from verification.actions.messages import delete_later, delete_message, send
from verification.decisions import RejectSenderChat, Restrict
from verification.models import Outcome
from verification.priorities import call_at
from verification.recording import Done
from verification.telegram_reads import default_permissions
from verification.updates import Person

if TYPE_CHECKING:
    from verification.engine import Engine

logger = structlog.get_logger(__name__)

# How often one chat hears why its "send as channel" messages disappear.
SENDER_CHAT_NOTICE_SECONDS = 60.0


async def restrict(engine: Engine, d: Restrict) -> Done:
    """Apply the group's action (mute, kick, or nothing beyond the deleted message)."""
    try:
        with call_at("P1"):
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
        return _refused(d, exc)
    except TelegramError as exc:
        logger.warning("restrict.failed", chat_id=d.chat_id, user_id=d.person.id,
                       error=str(exc))
        return Done(d.person, Outcome.ERROR, missing=d.missing, ok=False, failure=exc,
                    owed="restrict", detail=f"restrict failed: {exc}")
    if d.action == "mute":
        return Done(d.person, Outcome.RESTRICTED, ledger=Done.RESTRICTED, missing=d.missing,
                    detail=d.detail)
    if d.action == "kick":
        return Done(d.person, Outcome.KICKED, ledger=Done.KICKED, missing=d.missing,
                    detail=d.detail)
    return Done(d.person, Outcome.DELETED, missing=d.missing, detail=d.detail)


def _refused(d: Restrict, exc: BadRequest) -> Done:
    """Telegram said no: never owed (it would fail again until the rights change)."""
    text = exc.message.lower()
    if "administrator" in text or "owner" in text or "creator" in text:
        # An admin our cached list did not know yet: nobody is warned or recorded.
        return Done(d.person, None, ledger=Done.SETTLE, ok=False, target_is_admin=True)
    logger.warning("restrict.refused", chat_id=d.chat_id, user_id=d.person.id, error=exc.message)
    return Done(d.person, Outcome.ERROR, ledger=Done.SETTLE, missing=d.missing, ok=False,
                detail=f"restrict refused: {exc.message}",
                lacks_rights="rights" in text or "not enough" in text or "admin" in text)


async def reject_sender_chat(engine: Engine, d: RejectSenderChat, config: GroupConfig) -> None:
    """Posting as one's own channel is no bypass: delete, and say why (throttled)."""
    await delete_message(engine, d.chat_id, d.message_id)
    now = time.monotonic()
    if now - engine.sender_chat_notices.get(d.chat_id, 0.0) < SENDER_CHAT_NOTICE_SECONDS:
        return
    engine.sender_chat_notices[d.chat_id] = now
    with languages.speaking(engine.group_language(config)):  # said to the whole group
        text = render_to_string("verification/telegram/sender_chat.html",
                                {"group": wording.isolate(config.title)}).strip()
    message = await send(engine, d.chat_id, text, thread_id=d.thread_id, level="P1")
    if message is not None and config.warning_delete_after:
        delete_later(engine, d.chat_id, message, config.warning_delete_after)


async def unmute(engine: Engine, chat_id: int, person: Person, detail: str) -> Done:
    """Restore the group's own default permissions (not a fixed list: a group that
    forbids media for everyone keeps forbidding it for the unmuted member)."""
    try:
        permissions = await default_permissions(engine, chat_id)
        with call_at("P0"):
            await engine.bot.restrict_chat_member(
                chat_id, person.id, permissions, use_independent_chat_permissions=True
            )
    except TelegramError as exc:
        logger.warning("unmute.failed", chat_id=chat_id, user_id=person.id, error=str(exc))
        return Done(person, Outcome.ERROR, ok=False, failure=exc, owed="unmute",
                    detail=f"unmute failed: {exc}")
    return Done(person, Outcome.UNMUTED, ledger=Done.LIFTED, detail=detail)


async def ban(engine: Engine, chat_id: int, person: Person) -> Done:
    """Remove and ban (an owner's decision from the dashboard)."""
    try:
        with call_at("P1"):
            await engine.bot.ban_chat_member(chat_id, person.id)
    except TelegramError as exc:
        logger.warning("ban.failed", chat_id=chat_id, user_id=person.id, error=str(exc))
        return Done(person, None, ok=False)
    return Done(person, Outcome.KICKED, ledger=Done.KICKED, detail="banned from the dashboard")


async def unban(engine: Engine, chat_id: int, person: Person) -> Done:
    """Lift a ban; the user may join again (and is checked when they do)."""
    try:
        with call_at("P0"):
            await engine.bot.unban_chat_member(chat_id, person.id, only_if_banned=True)
    except TelegramError as exc:
        logger.warning("unban.failed", chat_id=chat_id, user_id=person.id, error=str(exc))
        return Done(person, None, ok=False)
    return Done(person, None, ledger=Done.LEFT)
