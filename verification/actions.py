"""Carrying decisions out: the only module that calls the Bot API.

Every call states its priority for the bot's rate limiter (P0 answers a
person, P1 enforces, P2 is bulk). Telegram errors are handled here, close to
the call, and turned into events and log lines; nothing raises into PTB.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog
from django.template.loader import render_to_string
from telegram import ChatPermissions, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter, TelegramError

from groups import services
from groups.config import ChannelConfig, GroupConfig
from verification import joinrequests
from verification.decisions import (
    Allow,
    ApproveJoin,
    AskToJoin,
    Decision,
    RejectSenderChat,
    Restrict,
    Unmute,
)
from verification.membership import MembershipUnknown
from verification.models import Outcome
from verification.updates import Person, is_member
from verification.warnings import Warning, keyboard, render

if TYPE_CHECKING:
    from verification.engine import Engine

logger = structlog.get_logger(__name__)

try:
    from bots.ratelimit import Priority, priority
except ImportError:  # pragma: no cover - the limiter ships with the runtime work
    Priority = None  # type: ignore[assignment,misc]

    def priority(level):  # type: ignore[no-redef]
        return contextlib.nullcontext()

PERMISSIONS_TTL = 300.0
# BadRequest texts that mean "not a member" rather than "cannot tell".
NOT_A_MEMBER = ("user not found", "participant_id_invalid", "member not found",
                "user_not_participant")


@contextlib.contextmanager
def _p(level: str) -> Iterator[None]:
    if Priority is None:
        yield
        return
    with priority(getattr(Priority, level)):
        yield


# --- reads --------------------------------------------------------------------------


async def fetch_membership(engine: Engine, channel_id: int, user_id: int) -> bool:
    """getChatMember: True/False, or MembershipUnknown when Telegram cannot say."""
    try:
        with _p("P1"):
            member = await engine.bot.get_chat_member(channel_id, user_id)
    except BadRequest as exc:
        if any(text in exc.message.lower() for text in NOT_A_MEMBER):
            return False
        logger.warning("membership.unknown", channel_id=channel_id, user_id=user_id,
                       error=exc.message)
        raise MembershipUnknown(exc.message) from exc
    except TelegramError as exc:
        logger.warning("membership.unknown", channel_id=channel_id, user_id=user_id,
                       error=str(exc))
        raise MembershipUnknown(str(exc)) from exc
    return is_member(member)


async def default_permissions(engine: Engine, chat_id: int) -> ChatPermissions:
    """The group's own default permissions (getChat), cached a few minutes.

    Unmuting restores these instead of a fixed list, so a group that forbids
    links or media for everyone keeps forbidding them.
    """
    cached = engine.permissions.get(chat_id)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    with _p("P0"):
        chat = await engine.bot.get_chat(chat_id)
    permissions = chat.permissions or ChatPermissions(can_send_messages=True)
    engine.permissions[chat_id] = (permissions, time.monotonic() + PERMISSIONS_TTL)
    return permissions


async def fetch_admins(engine: Engine, config: GroupConfig) -> bool:
    """Refresh the cached admin list of a group; True when it worked."""
    try:
        with _p("P2"):
            admins = await engine.bot.get_chat_administrators(config.chat_id)
    except TelegramError as exc:
        logger.warning("admins.refresh_failed", chat_id=config.chat_id, error=str(exc))
        return False
    await services.areplace_admins(config.pk, [
        {
            "user_id": a.user.id,
            "username": a.user.username or "",
            "first_name": a.user.first_name[:255],
            "is_creator": a.status == "creator",
            "is_anonymous": bool(getattr(a, "is_anonymous", False)),
            "can_restrict_members": a.status == "creator"
            or bool(getattr(a, "can_restrict_members", False)),
        }
        for a in admins
    ])
    return True


# --- the dispatcher ---------------------------------------------------------------


async def apply(engine: Engine, decision: Decision, config: GroupConfig | None,
                *, started: float | None = None, cache_hit: bool | None = None) -> None:
    """Carry out one decision."""
    if isinstance(decision, Allow) or config is None:
        return
    if isinstance(decision, Restrict):
        await restrict(engine, decision, config, started=started, cache_hit=cache_hit)
    elif isinstance(decision, RejectSenderChat):
        await reject_sender_chat(engine, decision, config)
    elif isinstance(decision, Unmute):
        await unmute(engine, decision, config, started=started)
    elif isinstance(decision, ApproveJoin):
        await approve_join(engine, decision, config, started=started)
    elif isinstance(decision, AskToJoin):
        await ask_to_join(engine, decision, config)


# --- restricting ------------------------------------------------------------------


async def delete_message(engine: Engine, chat_id: int, message_id: int) -> bool:
    try:
        with _p("P1"):
            return await engine.bot.delete_message(chat_id, message_id)
    except TelegramError as exc:
        # Already gone, too old, or no right: nothing more to do here.
        logger.info("message.delete_failed", chat_id=chat_id, message_id=message_id,
                    error=str(exc))
        return False


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


async def _hold(engine: Engine, d: Restrict, config: GroupConfig) -> str | None:
    """Apply the group's action; the Outcome, or None when Telegram refused."""
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
        await _refused(engine, d, config, exc)
        return None
    except TelegramError as exc:
        logger.warning("restrict.failed", chat_id=d.chat_id, user_id=d.person.id,
                       error=str(exc))
        engine.record(Outcome.ERROR, config, d.person, missing=d.missing,
                      detail=f"restrict failed: {exc}")
        return None
    if d.action == "mute":
        engine.restricted.add((d.chat_id, d.person.id))
        await services.amark_restricted(config.pk, d.person.id, name=d.person.name,
                                        username=d.person.username, reason=d.reason)
        return Outcome.RESTRICTED
    if d.action == "kick":
        await services.aset_member_status(config.pk, d.person.id, "kicked")
        return Outcome.KICKED
    return Outcome.DELETED


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
        await services.arecord_bot_rights(engine.bot_pk, config.chat_id, "supergroup",
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


# --- warnings ---------------------------------------------------------------------


async def send(engine: Engine, chat_id: int, text: str, *,
               markup: InlineKeyboardMarkup | None = None, thread_id: int | None = None,
               level: str = "P1") -> int | None:
    """sendMessage with HTML; the message id, or None when Telegram refused."""
    try:
        with _p(level):
            message = await engine.bot.send_message(
                chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup,
                message_thread_id=thread_id, disable_web_page_preview=True,
            )
    except TelegramError as exc:
        logger.warning("message.send_failed", chat_id=chat_id, error=str(exc))
        return None
    return message.message_id


async def warn(engine: Engine, config: GroupConfig, person: Person,
               missing: tuple[ChannelConfig, ...], thread_id: int | None) -> None:
    """Name the person on the chat's current warning, or post a new one."""
    warning, is_new = engine.board.add(config.chat_id, thread_id, config.title, person,
                                       missing, config.warning_text)
    if not is_new:
        schedule_edit(engine, warning, config)
        return
    text, markup = render(warning)
    message_id = await send(engine, config.chat_id, text, markup=markup, thread_id=thread_id)
    if message_id is None:
        engine.board.forget(warning)
        return
    first_users = warning.user_ids
    engine.board.posted(warning, message_id)
    await services.aset_warning_message(config.pk, first_users, message_id)
    if warning.user_ids != first_users:
        # More people arrived while it was being sent.
        schedule_edit(engine, warning, config)
    if config.warning_delete_after:
        engine.spawn(_expire_warning(engine, warning, config.warning_delete_after), timer=True)


def schedule_edit(engine: Engine, warning: Warning, config: GroupConfig) -> None:
    """Edit the warning once, shortly, however many changes arrive meanwhile."""
    if warning.edit_pending or warning.gone:
        return
    warning.edit_pending = True
    engine.spawn(_edit_later(engine, warning, config))


async def _edit_later(engine: Engine, warning: Warning, config: GroupConfig) -> None:
    from verification.warnings import EDIT_DELAY

    await warning.posted.wait()
    await asyncio.sleep(EDIT_DELAY)
    warning.edit_pending = False
    if warning.gone or warning.message_id is None:
        return
    if not warning.users:
        await _drop_warning(engine, warning)
        return
    text, markup = render(warning)
    try:
        with _p("P1"):
            await engine.bot.edit_message_text(
                text, chat_id=warning.chat_id, message_id=warning.message_id,
                parse_mode=ParseMode.HTML, reply_markup=markup, disable_web_page_preview=True,
            )
    except RetryAfter:
        schedule_edit(engine, warning, config)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            logger.info("warning.edit_failed", chat_id=warning.chat_id, error=exc.message)
            engine.board.forget(warning)
        return
    except TelegramError as exc:
        logger.info("warning.edit_failed", chat_id=warning.chat_id, error=str(exc))
        return
    await services.aset_warning_message(config.pk, warning.user_ids, warning.message_id)


async def _expire_warning(engine: Engine, warning: Warning, delay: int) -> None:
    await asyncio.sleep(delay)
    await _drop_warning(engine, warning)


async def _drop_warning(engine: Engine, warning: Warning) -> None:
    if warning.gone:
        return
    engine.board.forget(warning)
    if warning.message_id is not None:
        await delete_message(engine, warning.chat_id, warning.message_id)


async def unwarn(engine: Engine, config: GroupConfig, user_id: int) -> None:
    """Take a user who complied off their warning; delete it when nobody is left."""
    warning = engine.board.remove_user(config.chat_id, user_id)
    if warning is None:
        entry = await services.aledger_entry(config.pk, user_id)
        if entry is not None and entry.warning_message_id:
            # Posted before a restart: all we can do is remove it if it was theirs alone.
            await delete_message(engine, config.chat_id, entry.warning_message_id)
        return
    if not warning.users:
        await _drop_warning(engine, warning)
    else:
        schedule_edit(engine, warning, config)


# --- lifting ----------------------------------------------------------------------


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
            return False
    engine.restricted.discard((d.chat_id, d.person.id))
    await unwarn(engine, config, d.person.id)
    await services.aclear_restriction(config.pk, d.person.id)
    engine.record(Outcome.UNMUTED, config, d.person, started=started, detail=d.reason)
    return True


async def answer(engine: Engine, query_id: str, text: str = "", *, alert: bool = False) -> None:
    try:
        with _p("P0"):
            await engine.bot.answer_callback_query(query_id, text=text[:200] or None,
                                                   show_alert=alert)
    except TelegramError as exc:
        # Too late (over ~15 s) or already answered: the person sees nothing either way.
        logger.info("callback.answer_failed", error=str(exc))


# --- join requests ----------------------------------------------------------------


async def approve_join(engine: Engine, d: ApproveJoin, config: GroupConfig, *,
                       started: float | None = None) -> bool:
    try:
        with _p("P0"):
            await engine.bot.approve_chat_join_request(d.chat_id, d.person.id)
    except TelegramError as exc:
        # HIDE_REQUESTER_MISSING: the request is gone (withdrawn or handled by an admin).
        logger.info("join.approve_failed", chat_id=d.chat_id, user_id=d.person.id,
                    error=str(exc))
        return False
    await services.anote_member(config.pk, d.person.id, name=d.person.name,
                                username=d.person.username)
    engine.record(Outcome.JOIN_APPROVED, config, d.person, started=started)
    return True


async def ask_to_join(engine: Engine, d: AskToJoin, config: GroupConfig) -> None:
    """Tell the requester in private what to join; approve them once they do."""
    await joinrequests.aremember_request(engine.bot_pk, config.pk, d.person.id, d.user_chat_id,
                                         d.person.name, config.join_request_timeout)
    text = render_to_string("verification/telegram/join_request.html", {
        "name": d.person.name, "group": config.title, "channels": d.missing,
    }).strip()
    message_id = await send(engine, d.user_chat_id, text,
                            markup=keyboard(d.missing, d.chat_id, kind="request"), level="P1")
    if message_id is not None:
        await joinrequests.aset_request_message(config.pk, d.person.id, message_id)


async def decline_join(engine: Engine, config: GroupConfig, person: Person) -> None:
    try:
        with _p("P2"):
            await engine.bot.decline_chat_join_request(config.chat_id, person.id)
    except TelegramError as exc:
        logger.info("join.decline_failed", chat_id=config.chat_id, user_id=person.id,
                    error=str(exc))
        return
    engine.record(Outcome.JOIN_DECLINED, config, person, detail="timed out")


async def edit_private(engine: Engine, chat_id: int, message_id: int, text: str) -> None:
    try:
        with _p("P1"):
            await engine.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id,
                                               parse_mode=ParseMode.HTML)
    except TelegramError as exc:
        logger.info("message.edit_failed", chat_id=chat_id, error=str(exc))



# --- what commands need to know (the /protect family) ---------------------------


async def get_chat(engine: Engine, ref: int | str):
    """getChat by id or @username; None when Telegram does not know it (or refuses)."""
    try:
        with _p("P0"):
            return await engine.bot.get_chat(ref)
    except TelegramError as exc:
        logger.info("chat.lookup_failed", ref=str(ref), error=str(exc))
        return None


async def get_member(engine: Engine, chat_id: int, user_id: int):
    """getChatMember; None when Telegram refuses (bot not in the chat, chat gone)."""
    try:
        with _p("P0"):
            return await engine.bot.get_chat_member(chat_id, user_id)
    except TelegramError as exc:
        logger.info("member.lookup_failed", chat_id=chat_id, user_id=user_id, error=str(exc))
        return None


async def invite_link(engine: Engine, chat_id: int, existing: str | None) -> str:
    """A private channel's join link: the primary one, exported when missing."""
    if existing:
        return existing
    try:
        with _p("P0"):
            return await engine.bot.export_chat_invite_link(chat_id)
    except TelegramError as exc:
        logger.info("invite_link.failed", chat_id=chat_id, error=str(exc))
        return ""


async def reply(engine: Engine, chat_id: int, text: str, *,
                markup: InlineKeyboardMarkup | None = None, thread_id: int | None = None,
                delete_after: float = 0) -> int | None:
    """Answer a command; in groups the reply removes itself after `delete_after` seconds."""
    message_id = await send(engine, chat_id, text, markup=markup, thread_id=thread_id,
                            level="P0")
    if message_id is not None and delete_after:
        engine.delete_later(chat_id, message_id, delete_after)
    return message_id


async def edit(engine: Engine, chat_id: int, message_id: int, text: str,
               markup: InlineKeyboardMarkup | None = None) -> None:
    try:
        with _p("P0"):
            await engine.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id,
                                               parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            logger.info("message.edit_failed", chat_id=chat_id, error=exc.message)
    except TelegramError as exc:
        logger.info("message.edit_failed", chat_id=chat_id, error=str(exc))


async def lift_all(engine: Engine, config: GroupConfig, user_ids: list[int]) -> int:
    """Protection switched off: lift every restriction Nezuko placed here."""
    lifted = 0
    for user_id in user_ids:
        if await unmute(engine, Unmute(config.chat_id, Person(user_id, ""), "unprotect"),
                        config):
            lifted += 1
    return lifted
