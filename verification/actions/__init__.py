"""Carrying decisions out: the only package that changes anything in Telegram.

`apply(engine, decision, config)` is the entry: it makes the calls a decision
needs and returns what was done (a `recording.Done`, or None when there was
nothing to do), after handing that outcome to `verification.recording`, which
writes the ledger and the event. The modules below only call the Bot API and
report; they write nothing down themselves.

Every call states its priority for the bot's rate limiter
(`verification.priorities`). Telegram errors are handled here, close to the
call, and become outcomes and log lines; nothing raises into PTB.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from django.db import DatabaseError

from groups import languages
from groups.config import GroupConfig
from groups.services import ledger_reads
from verification import captcha, recording, telegram_reads
from verification.actions import joins, moderation
from verification.actions.joins import ask_to_join
from verification.actions.messages import (
    answer,
    delete_later,
    delete_message,
    edit,
    edit_private,
    reply,
    send,
)
from verification.actions.moderation import reject_sender_chat
from verification.actions.warning_messages import schedule_edit, unwarn, warn
from verification.decisions import (
    Allow,
    ApproveJoin,
    AskToJoin,
    Challenge,
    Decision,
    Ledger,
    RejectSenderChat,
    Restrict,
    Unmute,
    muted_on_telegram,
    restriction_in_place,
)
from verification.models import Outcome
from verification.recording import Done
from verification.updates import Person

if TYPE_CHECKING:
    from verification.engine import Engine

__all__ = [
    "Done", "answer", "apply", "approve_join", "ask_to_join", "ban", "challenge",
    "decline_join", "drop_challenge", "remove_newcomer",
    "delete_later", "delete_message", "edit", "edit_private", "lift_all", "reject_sender_chat",
    "reply", "restrict", "schedule_edit", "send", "unban", "unmute", "unwarn", "warn",
]


async def apply(engine: Engine, decision: Decision | ApproveJoin | AskToJoin | Challenge,
                config: GroupConfig | None, *, started: float | None = None,
                cache_hit: bool | None = None) -> Done | None:
    """Carry out one decision and record its outcome; None when nothing was done."""
    if isinstance(decision, Allow) or config is None:
        return None
    if isinstance(decision, Challenge):
        return await challenge(engine, decision, config, started=started, cache_hit=cache_hit)
    if isinstance(decision, Restrict):
        return await restrict(engine, decision, config, started=started, cache_hit=cache_hit)
    if isinstance(decision, RejectSenderChat):
        await reject_sender_chat(engine, decision, config)
    elif isinstance(decision, Unmute):
        return await unmute(engine, decision, config, started=started)
    elif isinstance(decision, ApproveJoin):
        return await approve_join(engine, decision, config, started=started)
    elif isinstance(decision, AskToJoin):
        await ask_to_join(engine, decision, config)
    return None


async def restrict(engine: Engine, d: Restrict, config: GroupConfig, *,
                   started: float | None = None, cache_hit: bool | None = None) -> Done | None:
    """Delete the message, restrict (or kick) the sender, record it, warn once.

    Observe mode only records what would have happened."""
    if d.observed:
        done = Done(d.person, Outcome.WOULD_RESTRICT, missing=d.missing, detail=d.detail)
        await recording.record(engine, config, done, started=started, cache_hit=cache_hit)
        return done
    if d.delete_message_id is not None:
        await delete_message(engine, d.chat_id, d.delete_message_id)
    if (d.chat_id, d.person.id) in engine.restricted and d.reason == "message":
        return None  # already restricted and warned: a late message or an edit
    if d.action == "mute" and await _in_place(engine, d, config):
        done = Done(d.person, Outcome.RESTRICTED, ledger=Done.RESTRICTED, missing=d.missing,
                    detail=d.detail)
    else:
        if d.action == "mute":
            await recording.intend(config, d.person)
        done = await moderation.restrict(engine, d)
    await recording.record(engine, config, done, started=started, cache_hit=cache_hit)
    if done.target_is_admin:
        # An admin our cached list did not know yet: refresh it, never restrict.
        telegram_reads.refresh_admins_soon(engine, config, force=True)
    if d.warn and done.event in (Outcome.RESTRICTED, Outcome.DELETED):
        await warn(engine, config, d.person, d.missing, d.thread_id, short=d.short)
    return done


async def _in_place(engine: Engine, d: Restrict, config: GroupConfig) -> bool:
    """Is Nezuko's restriction already there (an update handled again after a crash)?"""
    if (d.chat_id, d.person.id) in engine.restricted:
        return True
    try:
        entry = await ledger_reads.aledger_entry(config.pk, d.person.id)
    except DatabaseError:
        return False  # no ledger now: restricting again is harmless, missing one is not
    known = restriction_in_place(Ledger.of(entry), restricted_here=False)
    if known is not None:
        return known
    member = await telegram_reads.get_member(engine, d.chat_id, d.person.id)
    return member is not None and muted_on_telegram(
        member.status, bool(getattr(member, "can_send_messages", True)))


async def unmute(engine: Engine, d: Unmute, config: GroupConfig, *,
                 started: float | None = None, restore: bool = True) -> Done:
    """Lift a restriction and take the member off their warning.

    `restore=False` only takes them off their warning (delete-only groups).
    """
    if restore:
        done = await moderation.unmute(engine, d.chat_id, d.person, d.reason)
    else:
        done = Done(d.person, Outcome.UNMUTED, ledger=Done.LIFTED, detail=d.reason)
    if done.ok:
        # Before the ledger forgets which warning named them (a restart's leftovers).
        await unwarn(engine, config, d.person.id)
    await recording.record(engine, config, done, started=started)
    return done


async def challenge(engine: Engine, d: Challenge, config: GroupConfig, *,
                    started: float | None = None, cache_hit: bool | None = None) -> Done | None:
    """The human check: one mute, then one message with the question and what the
    policy still needs; removed when `d.timeout` seconds pass without an answer."""
    done = await restrict(engine, Restrict(d.chat_id, d.person, d.missing, "mute",
                                           reason="captcha", warn=False, short=d.short,
                                           policy=config.policy),
                          config, started=started, cache_hit=cache_hit)
    if done is None or done.event != Outcome.RESTRICTED:
        return done  # not muted (an admin after all, or Telegram refused): nothing to ask
    question = captcha.Question.new()
    pending = captcha.Pending(d.chat_id, d.person, question, d.missing)
    engine.captchas[(d.chat_id, d.person.id)] = pending
    # The question is for the newcomer alone: in their language.
    with languages.speaking(engine.language_of(config, d.person.language_code)):
        text, markup = captcha.render(config.title, d.person, question, d.timeout, d.missing,
                                      d.short, config.policy)
    pending.message_id = await send(engine, d.chat_id, text, markup=markup)
    # The time runs from when the newcomer can see the question (a raid queues messages).
    pending.timer = engine.spawn(_expire(engine, config, pending, d.timeout), timer=True)
    return done


async def _expire(engine: Engine, config: GroupConfig, pending: captcha.Pending,
                  after: float) -> None:
    await asyncio.sleep(after)
    if engine.captchas.get((pending.chat_id, pending.person.id)) is pending:
        await remove_newcomer(engine, config, pending, "captcha_timeout")


async def remove_newcomer(engine: Engine, config: GroupConfig, pending: captcha.Pending,
                          reason: str) -> Done | None:
    """No answer in time (or wrong twice): kicked, which Telegram does as ban + unban,
    so they may join again; their question goes."""
    await drop_challenge(engine, config, pending.person.id)
    return await restrict(engine, Restrict(pending.chat_id, pending.person, pending.missing,
                                           "kick", reason=reason, warn=False), config)


async def drop_challenge(engine: Engine, config: GroupConfig, user_id: int) -> None:
    """Forget a newcomer's question (answered, timed out, or they left) and delete it."""
    pending = engine.captchas.pop((config.chat_id, user_id), None)
    if pending is None:
        return
    if pending.timer is not None and pending.timer is not asyncio.current_task():
        pending.timer.cancel()
    if pending.message_id is not None:
        await delete_message(engine, config.chat_id, pending.message_id)


async def lift_all(engine: Engine, config: GroupConfig, user_ids: list[int]) -> int:
    """Protection switched off: lift every restriction Nezuko placed here."""
    lifted = 0
    for user_id in user_ids:
        done = await unmute(engine, Unmute(config.chat_id, Person(user_id, ""), "unprotect"),
                            config)
        lifted += done.ok
    return lifted


async def ban(engine: Engine, config: GroupConfig, person: Person) -> bool:
    done = await moderation.ban(engine, config.chat_id, person)
    await recording.record(engine, config, done)
    return done.ok


async def unban(engine: Engine, config: GroupConfig, person: Person) -> bool:
    done = await moderation.unban(engine, config.chat_id, person)
    await recording.record(engine, config, done)
    return done.ok


async def approve_join(engine: Engine, d: ApproveJoin, config: GroupConfig, *,
                       started: float | None = None) -> Done:
    if d.would_ask:
        await recording.record(engine, config, Done(
            d.person, Outcome.WOULD_RESTRICT, missing=d.would_ask, detail="join_request"))
    done = await joins.approve_join(engine, d)
    await recording.record(engine, config, done, started=started)
    return done


async def decline_join(engine: Engine, config: GroupConfig, person: Person) -> Done:
    done = await joins.decline_join(engine, config.chat_id, person)
    await recording.record(engine, config, done)
    return done
