"""What Nezuko asks Telegram: membership, permissions, admins, chats."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog
from telegram import ChatFullInfo, ChatMember, ChatPermissions
from telegram.error import BadRequest, TelegramError

from groups.config import GroupConfig
from groups.services import admin_list
from verification.actions._call import NOT_A_MEMBER, PERMISSIONS_TTL, _p
from verification.membership import MembershipUnknown
from verification.updates import is_member

if TYPE_CHECKING:
    from verification.engine import Engine

logger = structlog.get_logger(__name__)


async def fetch_membership(engine: Engine, channel_id: int, user_id: int,
                           level: str = "P1") -> bool:
    """getChatMember: True/False, or MembershipUnknown when Telegram cannot say."""
    try:
        with _p(level):
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
    await admin_list.areplace_admins(config.pk, [
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


async def get_chat(engine: Engine, ref: int | str) -> ChatFullInfo | None:
    """getChat by id or @username; None when Telegram does not know it (or refuses)."""
    try:
        with _p("P0"):
            return await engine.bot.get_chat(ref)
    except TelegramError as exc:
        logger.info("chat.lookup_failed", ref=str(ref), error=str(exc))
        return None


async def get_member(engine: Engine, chat_id: int, user_id: int) -> ChatMember | None:
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
