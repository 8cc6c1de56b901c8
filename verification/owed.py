"""Carrying out what is owed: restrictions and unmutes Telegram did not take.

`actions` writes an owed action on the member's ledger row when a call fails
for a reason that passes (429 past the limiter's patience, 5xx, network).
`run(engine, stop)` is a per-bot runtime task: every few seconds
`settle_due(engine)` takes the due rows, decides again on today's facts
(`decisions.screen_owed` / `decide_owed`) and either acts, drops what became
moot, or leaves the row for a later try (the action's failure path pushes it
back with a longer wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime

import structlog
from django.db import DatabaseError

from bots import metrics
from groups import owed
from verification import actions, telegram_reads
from verification.decisions import Check, Moot, decide_owed, screen_owed
from verification.engine import Engine
from verification.updates import Person

logger = structlog.get_logger(__name__)

INTERVAL_SECONDS = 5.0
BATCH = 50
IN_GROUP = ("member", "restricted", "administrator", "creator")


async def settle_due(engine: Engine, now: datetime.datetime | None = None) -> int:
    """One pass over the owed actions due by `now`; returns how many were looked at."""
    due = await owed.adue(engine.bot_pk, BATCH, now)
    for item in due:
        await _settle(engine, item)
    return len(due)


async def _settle(engine: Engine, item: owed.OwedAction) -> None:
    config = await engine.config(item.chat_id)
    person = Person(item.user_id, item.name, item.username)
    decision = screen_owed(item.action, person, config, in_group=item.status in IN_GROUP,
                           restricted_by_nezuko=item.restricted_by_nezuko)
    if isinstance(decision, Check) and config is not None:
        # Fresh answers where the cache has none; a person is not waiting: P2.
        answers, _ = await telegram_reads.check(engine, person.id, decision.channels,
                                                level="P2")
        decision = decide_owed(item.action, decision, config, answers)
    if isinstance(decision, Moot):
        await owed.asettle(item.group_pk, item.user_id)
        logger.info("owed.moot", chat_id=item.chat_id, user_id=item.user_id,
                    action=item.action, why=decision.why)
        return
    if not await owed.aclaim(item):
        return  # another runbot took it
    logger.info("owed.retry", chat_id=item.chat_id, user_id=item.user_id, action=item.action,
                attempt=item.attempts + 1)
    # Success settles the row (the ledger write clears it); failure pushes it back.
    await actions.apply(engine, decision, config)


async def report(engine: Engine) -> int:
    """Export how much this bot owes (`nezuko_owed_actions`); returns it."""
    count = await owed.aowed_count(bot_id=engine.bot_pk)
    metrics.set_owed_actions(engine.bot_pk, count)
    return count


async def run(engine: Engine, stop: asyncio.Event) -> None:
    """Settle owed actions until `stop` is set."""
    while not stop.is_set():
        try:
            # A full batch: more may be due at once.
            while await settle_due(engine) >= BATCH and not stop.is_set():
                pass
            await report(engine)
        except DatabaseError as exc:
            # The database is away: the rows wait; nothing is lost.
            logger.warning("owed.unavailable", bot=engine.bot_pk, error=str(exc).strip()[:200])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=INTERVAL_SECONDS)
