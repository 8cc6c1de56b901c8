"""Answering join requests: the calls, and their outcome for `verification.recording`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from django.template.loader import render_to_string
from telegram.error import TelegramError

from groups import languages
from groups.config import GroupConfig
from verification import joinrequests, recording, wording
from verification.actions.messages import send
from verification.decisions import ApproveJoin, AskToJoin
from verification.models import Outcome
from verification.priorities import call_at
from verification.recording import Done
from verification.updates import Person
from verification.warnings import keyboard, needed

if TYPE_CHECKING:
    from verification.engine import Engine

logger = structlog.get_logger(__name__)


async def approve_join(engine: Engine, d: ApproveJoin) -> Done:
    try:
        with call_at("P0"):
            await engine.bot.approve_chat_join_request(d.chat_id, d.person.id)
    except TelegramError as exc:
        # HIDE_REQUESTER_MISSING: the request is gone (withdrawn or handled by an admin).
        logger.info("join.approve_failed", chat_id=d.chat_id, user_id=d.person.id,
                    error=str(exc))
        return Done(d.person, None, ok=False)
    return Done(d.person, Outcome.JOIN_APPROVED, ledger=Done.MEMBER)


async def ask_to_join(engine: Engine, d: AskToJoin, config: GroupConfig) -> None:
    """Tell the requester in private what to join; approve them once they do."""
    await joinrequests.aremember_request(engine.bot_pk, config.pk, d.person.id, d.user_chat_id,
                                         d.person.name, config.join_request_timeout)
    # A private message to the requester: in their language.
    with languages.speaking(engine.language_of(config, d.person.language_code)):
        text = render_to_string("verification/telegram/join_request.html", {
            "name": wording.isolate(d.person.name), "group": wording.isolate(config.title),
            "what": needed(d.missing, d.short, config.policy),
            "button": wording.joined_button(),
        }).strip()
        markup = keyboard(d.missing, d.chat_id, kind="request")
    message_id = await send(engine, d.user_chat_id, text, markup=markup, level="P1")
    if message_id is not None:
        await joinrequests.aset_request_message(config.pk, d.person.id, message_id)
        await recording.asked_to_join(config, d.person, d.missing)


async def decline_join(engine: Engine, chat_id: int, person: Person) -> Done:
    try:
        with call_at("P2"):
            await engine.bot.decline_chat_join_request(chat_id, person.id)
    except TelegramError as exc:
        logger.info("join.decline_failed", chat_id=chat_id, user_id=person.id, error=str(exc))
        return Done(person, None, ok=False)
    return Done(person, Outcome.JOIN_DECLINED, detail="timed out")
