"""Flow 2: someone joined a group (chat_member or new_chat_members), and what
other admins do to members: restrictions and admin rights changing hands."""

from __future__ import annotations

import time

from telegram import ChatMemberUpdated, Update

from bots import metrics
from groups import rights
from groups.config import GroupConfig
from groups.services import ledger_reads
from verification import actions, recording, telegram_reads
from verification.decisions import (
    Allow,
    Check,
    Freed,
    HandOver,
    Ledger,
    decide_newcomer,
    decide_rejoin,
    decide_restriction_change,
    outcome_label,
    restriction_is_ours,
    screen_person,
)
from verification.engine import Engine
from verification.flows import channels
from verification.flows.messages import verify
from verification.updates import MemberChange, Person


async def on_new_members(engine: Engine, update: Update) -> None:
    message = update.effective_message
    for user in message.new_chat_members or ():
        # Who joined by themselves is also the sender, whose `language_code` Telegram sends.
        self_joined = message.from_user is not None and message.from_user.id == user.id
        await joined(engine, message.chat_id,
                     Person.from_user(message.from_user if self_joined else user))


async def joined(engine: Engine, chat_id: int, person: Person) -> None:
    # Telegram reports one join twice (chat_member and new_chat_members).
    if not engine.first_join(chat_id, person.id):
        return
    started = time.perf_counter()
    config = await engine.config(chat_id)
    decision = screen_person(person, config)
    if isinstance(decision, Check):
        decision, hit = await verify(engine, decision, config, reason="join")
        decision = decide_newcomer(config, person, decision)
        metrics.record_decision(outcome_label(decision), time.perf_counter() - started)
        if isinstance(decision, Allow):
            await _welcome_back(engine, config, person)
        await actions.apply(engine, decision, config, started=started, cache_hit=hit)


async def _welcome_back(engine: Engine, config: GroupConfig, person: Person) -> None:
    entry = await ledger_reads.aledger_entry(config.pk, person.id)
    ours = restriction_is_ours(Ledger.of(entry),
                               restricted_here=(config.chat_id, person.id) in engine.restricted)
    unmute = decide_rejoin(config, person, restricted_by_nezuko=ours)
    if unmute is not None:
        await actions.unmute(engine, unmute, config)


async def on_chat_member(engine: Engine, update: Update) -> None:
    await _admin_standing(engine, update.chat_member)
    change = MemberChange.from_update(update.chat_member)
    if change is None:
        return
    if change.chat_type == "channel":
        await channels.channel_member(engine, change)
        return
    config = await engine.config(change.chat_id)
    if config is None:
        return
    handed = decide_restriction_change(change, engine.bot_telegram_id)
    if handed is not None:
        await _restriction_by_someone_else(engine, config, handed)
    if change.joined:
        await joined(engine, change.chat_id, change.person)
    elif change.left:
        engine.forget_join(change.chat_id, change.person.id)
        await actions.drop_challenge(engine, config, change.person.id)
        await recording.member_left(config, change.person,
                                    kicked=change.new_status == "kicked")
        if engine.board.of_user(change.chat_id, change.person.id) is not None:
            await actions.unwarn(engine, config, change.person.id)


async def _admin_standing(engine: Engine, cmu: ChatMemberUpdated | None) -> None:
    """Rights follow Telegram at once: an admin demoted, stripped of a right,
    banned or gone loses their admin row (and the dashboard) now; the forced
    refresh then confirms the whole list. Ordinary joins and leaves cost nothing."""
    if cmu is None or cmu.chat.type == "channel":
        return
    old, new = cmu.old_chat_member, cmu.new_chat_member
    before = rights.AdminStanding.of(old.status, old.to_dict())
    after = rights.AdminStanding.of(new.status, new.to_dict())
    if before == after:
        return
    user = new.user
    await rights.anote_standing(engine.bot_pk, cmu.chat.id, user.id, after,
                                username=user.username or "", first_name=user.first_name)
    config = await engine.config(cmu.chat.id)
    if config is not None:
        telegram_reads.refresh_admins_soon(engine, config, force=True)


async def _restriction_by_someone_else(engine: Engine, config: GroupConfig,
                                       change: HandOver | Freed) -> None:
    """The ledger follows the other admin, so Nezuko never lifts what they placed;
    someone they freed is taken off Nezuko's warning."""
    await recording.changed_hands(engine, config, change)
    person = change.person
    if isinstance(change, Freed) and engine.board.of_user(config.chat_id, person.id) is not None:
        await actions.unwarn(engine, config, person.id)
