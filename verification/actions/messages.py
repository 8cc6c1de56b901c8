"""Sending, editing, deleting messages and answering button presses."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog
from telegram import InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from verification.priorities import call_at

if TYPE_CHECKING:
    from verification.engine import Engine

logger = structlog.get_logger(__name__)


async def send(engine: Engine, chat_id: int, text: str, *,
               markup: InlineKeyboardMarkup | None = None, thread_id: int | None = None,
               level: str = "P1") -> int | None:
    """sendMessage with HTML; the message id, or None when Telegram refused."""
    try:
        with call_at(level):
            message = await engine.bot.send_message(
                chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup,
                message_thread_id=thread_id, disable_web_page_preview=True,
            )
    except TelegramError as exc:
        logger.warning("message.send_failed", chat_id=chat_id, error=str(exc))
        return None
    return message.message_id


async def reply(engine: Engine, chat_id: int, text: str, *,
                markup: InlineKeyboardMarkup | None = None, thread_id: int | None = None,
                delete_after: float = 0) -> int | None:
    """Answer a command; in groups the reply removes itself after `delete_after` seconds."""
    message_id = await send(engine, chat_id, text, markup=markup, thread_id=thread_id,
                            level="P0")
    if message_id is not None and delete_after:
        delete_later(engine, chat_id, message_id, delete_after)
    return message_id


async def edit(engine: Engine, chat_id: int, message_id: int, text: str,
               markup: InlineKeyboardMarkup | None = None) -> None:
    try:
        with call_at("P0"):
            await engine.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id,
                                               parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            logger.info("message.edit_failed", chat_id=chat_id, error=exc.message)
    except TelegramError as exc:
        logger.info("message.edit_failed", chat_id=chat_id, error=str(exc))


async def edit_private(engine: Engine, chat_id: int, message_id: int, text: str) -> None:
    try:
        with call_at("P1"):
            await engine.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id,
                                               parse_mode=ParseMode.HTML)
    except TelegramError as exc:
        logger.info("message.edit_failed", chat_id=chat_id, error=str(exc))


async def delete_message(engine: Engine, chat_id: int, message_id: int) -> bool:
    try:
        with call_at("P1"):
            return await engine.bot.delete_message(chat_id, message_id)
    except TelegramError as exc:
        # Already gone, too old, or no right: nothing more to do here.
        logger.info("message.delete_failed", chat_id=chat_id, message_id=message_id,
                    error=str(exc))
        return False


def delete_later(engine: Engine, chat_id: int, message_id: int, delay: float) -> None:
    """Delete the message after `delay` seconds; a restart forgets it (the maintenance
    sweep removes overdue warnings, other replies stay)."""
    async def later() -> None:
        await asyncio.sleep(delay)
        await delete_message(engine, chat_id, message_id)

    engine.spawn(later(), timer=True)


async def answer(engine: Engine, query_id: str, text: str = "", *, alert: bool = False) -> None:
    try:
        with call_at("P0"):
            await engine.bot.answer_callback_query(query_id, text=text[:200] or None,
                                                   show_alert=alert)
    except TelegramError as exc:
        # Too late (over ~15 s) or already answered: the person sees nothing either way.
        logger.info("callback.answer_failed", error=str(exc))
