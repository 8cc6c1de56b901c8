"""Flow 3: join requests. Subscribers are approved at once; others get a private
message with what to join and are approved when they comply (a channel join,
or the button); the maintenance sweep declines what waited too long."""

from __future__ import annotations

import time

from django.utils.html import escape
from telegram import Update

from verification import actions, telegram_reads
from verification.decisions import ApproveJoin, StillMissing, decide_join_request
from verification.engine import Engine
from verification.joinrequests import aclaim_request
from verification.updates import JoinRequest, Person


async def on_join_request(engine: Engine, update: Update) -> None:
    started = time.perf_counter()
    cjr = update.chat_join_request
    request = JoinRequest.from_request(cjr.chat, cjr.from_user, cjr.user_chat_id)
    config = await engine.config(request.chat_id)
    answers: dict = {}
    if config is not None and config.protecting:
        answers, _ = await telegram_reads.check(engine, request.person.id, config.channels)
    decision = decide_join_request(config, request.person, request.user_chat_id, answers)
    await actions.apply(engine, decision, config, started=started)


async def retry_join_request(engine: Engine, chat_id: int, person: Person,
                             fresh: tuple[int, ...] = (),
                             level: str = "P1") -> StillMissing | None:
    """Approve a pending request if every channel is now satisfied."""
    config = await engine.config(chat_id)
    if config is None:
        return None
    answers, _ = await telegram_reads.check(engine, person.id, config.channels, fresh=fresh,
                                            level=level)
    decision = decide_join_request(config, person, person.id, answers)
    if not isinstance(decision, ApproveJoin):
        missing = getattr(decision, "missing", ())
        return StillMissing(chat_id, person, missing)
    # Claimed first: a channel join and a press racing for one request approve once.
    request = await aclaim_request(config.pk, person.id)
    if request is None:
        return None
    await actions.approve_join(engine, decision, config)
    if request.message_id:
        await actions.edit_private(engine, request.user_chat_id, request.message_id,
                                   f"You're in! Welcome to <b>{escape(config.title)}</b>.")
    return None
