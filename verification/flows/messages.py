"""Flow 1: a message (or an edit) in a protected group."""

from __future__ import annotations

import time

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bots import metrics
from groups.config import GroupConfig
from verification import actions, recording, telegram_reads
from verification.decisions import (
    Allow,
    Check,
    Restrict,
    decide_membership,
    known_enough,
    outcome_label,
    screen_message,
    screen_person,
)
from verification.engine import Engine
from verification.models import Outcome
from verification.updates import IncomingMessage


async def on_message(engine: Engine, update: Update) -> None:
    started = time.perf_counter()
    message = update.effective_message
    incoming = IncomingMessage.from_message(message, is_edit=update.edited_message is not None)
    config = await engine.config(incoming.chat_id)
    decision = screen_message(incoming, config)
    hit = None
    if isinstance(decision, Check):
        decision, hit = await verify(engine, decision, config, reason="message",
                                     message=incoming)
    metrics.record_decision(outcome_label(decision), time.perf_counter() - started)
    await actions.apply(engine, decision, config, started=started, cache_hit=hit)
    if config is not None and config.protecting and telegram_reads.admins_stale(config):
        # Every few minutes, not per message: at most one call a minute per group.
        telegram_reads.refresh_admins_soon(engine, config)
    if not isinstance(decision, Allow) and not _observed(decision):
        # The sender may not speak: no command of theirs runs either.
        raise ApplicationHandlerStop


def _observed(decision: object) -> bool:
    return isinstance(decision, Restrict) and decision.observed


async def verify(engine: Engine, check: Check, config: GroupConfig, *, reason: str,
                 message: IncomingMessage | None = None) -> tuple[Allow | Restrict, bool]:
    """Membership under the group's policy; memory first, zero calls when it decides."""
    answers = engine.peek(check.person.id, check.channels, partial=config.policy != "all")
    hit = answers is not None and known_enough(config, check.channels, answers)
    if not hit:
        answers, hit = await telegram_reads.check(engine, check.person.id, check.channels)
    decision = decide_membership(check, config, answers, reason=reason, message=message)
    if isinstance(decision, Restrict):
        # Never restrict on a stale admin list: refresh it first (one call per 10 min).
        fresh = await telegram_reads.ensure_admins(engine, config)
        if fresh is not config and isinstance(screen_person(check.person, fresh), Allow):
            return Allow("admin"), hit
    elif not hit:
        recording.event(engine, Outcome.VERIFIED, config, check.person, cache_hit=False)
    recording.seen(engine, config, check.person)
    return decision, hit
