"""The human check's answer buttons (a newcomer in a group with `captcha` on).

Who may press and what a press means are decisions (`decisions.decide_answer`,
`decide_after_check`); the question and its state are `verification.captcha`.
"""

from __future__ import annotations

import time

from django.utils.translation import pgettext
from telegram import CallbackQuery, Update

from groups import languages
from groups.config import GroupConfig
from groups.services import ledger_reads
from verification import actions, captcha, telegram_reads
from verification.decisions import (
    Ledger,
    decide_after_check,
    decide_answer,
    restriction_is_ours,
)
from verification.engine import Engine
from verification.updates import Person


async def on_answer(engine: Engine, update: Update) -> None:
    started = time.perf_counter()
    query = update.callback_query
    parsed = captcha.parse_callback_data(query.data)
    if parsed is None or query.message is None:
        await actions.answer(engine, query.id)
        return
    config = await engine.config(query.message.chat_id)
    with languages.speaking(engine.language_of(config, query.from_user.language_code)):
        await _answered(engine, query, config, *parsed, started=started)


async def _answered(engine: Engine, query: CallbackQuery, config: GroupConfig | None,
                    user_id: int, chosen: int, *, started: float) -> None:
    """The press, answered in the presser's language (the caller's `speaking`)."""
    if query.from_user.id != user_id:
        await actions.answer(engine, query.id, pgettext(
            "alert", "This question is for the newcomer it names."), alert=True)
        return
    if not engine.may_press(user_id):
        await actions.answer(engine, query.id, pgettext("alert", "One moment, checking…"))
        return
    chat_id = query.message.chat_id
    if config is None:
        await actions.answer(engine, query.id)
        return
    person = Person.from_user(query.from_user)
    pending = engine.captchas.get((chat_id, user_id))
    if pending is None:
        # Asked before a restart: the answer is lost; the mute still says who was asked.
        ledger = Ledger.of(await ledger_reads.aledger_entry(config.pk, user_id))
        if not restriction_is_ours(ledger, restricted_here=(chat_id, user_id)
                                   in engine.restricted):
            await actions.answer(engine, query.id,
                                 pgettext("alert", "This question has expired."))
            return
    verdict = decide_answer(pending.question.answer if pending else None, chosen,
                            pending.wrong if pending else 0)
    if verdict.passed:
        await actions.answer(engine, query.id, pgettext("alert", "Thanks!"))
        await actions.drop_challenge(engine, config, user_id)
        if pending is None:
            await actions.delete_message(engine, chat_id, query.message.message_id)
        # Now the subscription rule alone: unmuted, or warned like any member.
        answers, hit = await telegram_reads.check(engine, user_id, config.channels, level="P0")
        await actions.apply(engine, decide_after_check(config, person, answers), config,
                            started=started, cache_hit=hit)
    elif verdict.removed:
        await actions.answer(engine, query.id, pgettext("alert", "Wrong answer."), alert=True)
        await actions.remove_newcomer(engine, config, pending, "captcha_wrong")
    else:
        pending.wrong += 1
        await actions.answer(engine, query.id, pgettext("alert", "Not quite: try again."),
                             alert=True)
