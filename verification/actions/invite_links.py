"""A group's own invite links to its channels: the Bot API calls (docs/growth.md).

Nobody waits for these, so they go at P2. They write nothing down: the caller
hands what they made to `verification.recording`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from telegram.error import TelegramError

from groups.services.protection import invite_link_name
from verification.priorities import call_at

if TYPE_CHECKING:
    from verification.engine import Engine

logger = structlog.get_logger(__name__)


async def create_invite_link(engine: Engine, channel_chat_id: int, group_title: str) -> str:
    """createChatInviteLink named for the group; "" when Telegram refuses (the bot
    lacks the channel's "Invite users" right, or the channel is gone)."""
    try:
        with call_at("P2"):
            link = await engine.bot.create_chat_invite_link(
                channel_chat_id, name=invite_link_name(group_title))
    except TelegramError as exc:
        logger.info("invite_link.create_failed", channel_id=channel_chat_id, error=str(exc))
        return ""
    return link.invite_link


async def revoke_invite_link(engine: Engine, channel_chat_id: int, url: str) -> bool:
    """revokeChatInviteLink; a link Telegram no longer knows counts as revoked."""
    try:
        with call_at("P2"):
            await engine.bot.revoke_chat_invite_link(channel_chat_id, url)
    except TelegramError as exc:
        logger.info("invite_link.revoke_failed", channel_id=channel_chat_id, error=str(exc))
        return "expired" in str(exc).lower() or "not found" in str(exc).lower()
    return True
