"""Flows 4 and 5: someone left or joined a channel a group requires.

The chat_member update is the answer: the membership cache is set without a
getChatMember call, which is why chat_member updates are asked for
(ALLOWED_UPDATES) and why the bot must be admin in the channel.
"""

from __future__ import annotations

from groups.config import agroups_for_channel
from groups.services import ledger_reads
from verification import actions, recording, telegram_reads
from verification.decisions import Check, Unmute, decide_membership, decide_unmute, screen_person
from verification.engine import Engine
from verification.flows.join_requests import retry_join_request
from verification.joinrequests import apending_groups_of_user
from verification.updates import MemberChange


async def channel_member(engine: Engine, change: MemberChange) -> None:
    if change.was_member == change.is_member:
        return
    if not await agroups_for_channel(engine.bot_pk, change.chat_id):
        return
    key = (engine.bot_telegram_id, change.chat_id, change.person.id)
    engine.memberships.remember(key, change.is_member)
    # Attributed before any unmute, so the verification finds the join it follows.
    await recording.channel_membership(engine, change)
    if change.left:
        await _left_channel(engine, change)
    else:
        await _joined_channel(engine, change)


async def _left_channel(engine: Engine, change: MemberChange) -> None:
    """Restricted and warned at once in every group that requires it and knows them."""
    # Members seen in the last second are still buffered: the ledger must know them.
    await engine.sightings.aflush()
    chat_ids = await ledger_reads.aknown_groups_for_channel(
        engine.bot_pk, change.chat_id, change.person.id)
    for chat_id in chat_ids:
        config = await engine.config(chat_id)
        decision = screen_person(change.person, config)
        if not isinstance(decision, Check):
            continue
        answers, hit = await telegram_reads.check(engine, change.person.id, decision.channels)
        decision = decide_membership(decision, config, answers, reason="left_channel")
        await actions.apply(engine, decision, config, cache_hit=hit)


async def _joined_channel(engine: Engine, change: MemberChange) -> None:
    """Unmuted, with no click, wherever the ledger says Nezuko restricted them and
    every channel is now satisfied; pending join requests approved."""
    restricted = await ledger_reads.aknown_groups_for_channel(
        engine.bot_pk, change.chat_id, change.person.id, restricted_only=True)
    for chat_id in restricted:
        config = await engine.config(chat_id)
        if config is None or not config.protecting:
            continue
        answers, _ = await telegram_reads.check(engine, change.person.id, config.channels)
        # The query above asked the ledger: only rows Nezuko restricted.
        decision = decide_unmute(config, change.person, answers, restricted_by_nezuko=True,
                                 reason="channel_join",
                                 challenged=(chat_id, change.person.id) in engine.captchas)
        if isinstance(decision, Unmute):
            await actions.apply(engine, decision, config)
    for chat_id in await apending_groups_of_user(engine.bot_pk, change.person.id):
        await retry_join_request(engine, chat_id, change.person)
