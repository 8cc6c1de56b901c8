"""Posting, editing and removing the (coalesced) warnings of verification.warnings.

The board (`engine.board`) says which live message names whom; it changes
here, together with the message it describes, so the two never disagree. The
ledger keeps each member's warning message id as well: after a restart the
board is empty, and the button and the maintenance sweep find the message
from the ledger instead.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter, TelegramError

from groups.config import ChannelConfig, GroupConfig
from groups.services import ledger_reads, ledger_writes
from verification.actions.messages import delete_message, send
from verification.priorities import call_at
from verification.updates import Person
from verification.warnings import Warning, render

if TYPE_CHECKING:
    from verification.engine import Engine

logger = structlog.get_logger(__name__)


async def warn(engine: Engine, config: GroupConfig, person: Person,
               missing: tuple[ChannelConfig, ...], thread_id: int | None, *,
               short: int = 0) -> None:
    """Name the person on the chat's current warning, or post a new one.

    `short`: how many of `missing` they need under the group's policy (0: all)."""
    warning, is_new = engine.board.add(config.chat_id, thread_id, config.title, person,
                                       missing, config.warning_text, short=short,
                                       policy=config.policy,
                                       language=engine.group_language(config),
                                       custom_texts=config.warning_texts)
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
    await ledger_writes.aset_warning_message(config.pk, first_users, message_id)
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
        with call_at("P1"):
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
    await ledger_writes.aset_warning_message(config.pk, warning.user_ids, warning.message_id)


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
        entry = await ledger_reads.aledger_entry(config.pk, user_id)
        if entry is not None and entry.warning_message_id:
            # Posted before a restart: all we can do is remove it if it was theirs alone.
            await delete_message(engine, config.chat_id, entry.warning_message_id)
        return
    if not warning.users:
        await _drop_warning(engine, warning)
    else:
        schedule_edit(engine, warning, config)
