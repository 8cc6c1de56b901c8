"""Broadcast messages: plain text to one person, and the preview's buttons.

Plain text (no parse mode): a superadmin's announcement reaches people exactly
as it was typed, and nothing in it can break the message's markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from telegram import InlineKeyboardMarkup
from telegram.error import TelegramError

from verification.priorities import call_at, in_background

if TYPE_CHECKING:
    from verification.engine import Engine

logger = structlog.get_logger(__name__)


async def announce(engine: Engine, user_id: int, text: str,
                   markup: InlineKeyboardMarkup) -> None:
    """One broadcast message, at the lowest priority. Raises Telegram's error: the
    sender decides from its kind (blocked, refused, passing) what becomes of it."""
    with in_background():
        await engine.bot.send_message(user_id, text, reply_markup=markup)


async def preview(engine: Engine, chat_id: int, text: str,
                  markup: InlineKeyboardMarkup) -> int | None:
    """The announcement as its recipients will read it, to the superadmin (P0)."""
    try:
        with call_at("P0"):
            message = await engine.bot.send_message(chat_id, text, reply_markup=markup)
    except TelegramError as exc:
        logger.warning("broadcast.preview_failed", chat_id=chat_id, error=str(exc))
        return None
    return message.message_id


async def drop_buttons(engine: Engine, chat_id: int, message_id: int) -> None:
    """Take a preview's buttons away once it was answered."""
    try:
        with call_at("P0"):
            await engine.bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id,
                                                       reply_markup=None)
    except TelegramError as exc:
        logger.info("message.edit_failed", chat_id=chat_id, error=str(exc))
