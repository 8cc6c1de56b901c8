"""A bot's periodic work, run by runbot beside each bot (`RuntimeOptions.bot_tasks`).

At start: every group's configuration in one bulk load, and the bot's
membership answers copied from the shared cache into memory in bulk, so the
first message of each known member after a restart takes the fast path.

Then, side by side, each loop bounded to one task:

* every `SWEEP_INTERVAL`: decline join requests nobody answered in time,
  delete warnings a restart left behind, fail dashboard commands a dead
  runbot left running;
* every `CHECKUP_INTERVAL`: the /doctor check-up of every protected group a
  member was active in lately (`CHECKUP_ACTIVE_WITHIN`; an idle group has
  nobody to protect and costs nothing), spread evenly over the interval and
  at the lowest priority, so 10,000 groups never queue 20,000 calls at once
  ahead of people;
* continuously: membership answers in use that near their end are asked
  again at the lowest priority (`telegram_reads.refresh_due`);
* every second: members seen are written in one bulk upsert
  (`ledger_writes.MemberSightings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
from collections.abc import Awaitable, Callable

import structlog
from asgiref.sync import sync_to_async

from bots import command_queue
from groups.config import apreload, configs
from groups.services import health
from verification import telegram_reads
from verification.commands import Commands
from verification.engine import Engine
from verification.flows import sweeps
from verification.priorities import in_background

logger = structlog.get_logger(__name__)

SWEEP_INTERVAL = 60.0
CHECKUP_INTERVAL = 15 * 60.0
CHECKUP_DELAY = 60.0
# A group where no member was checked for this long is skipped by the check-up.
CHECKUP_ACTIVE_WITHIN = 60 * 60.0
# The check-ups of one round are spread over this share of the interval.
CHECKUP_SPREAD = 0.9
# How often to look for membership answers due for a refresh when none were.
REFRESH_INTERVAL = 1.0
# Executors finish in seconds; a command RUNNING this long was orphaned by a dead runbot.
STALE_COMMAND_AGE = datetime.timedelta(minutes=15)


async def maintain(engine: Engine, stop: asyncio.Event) -> None:
    """The start-up loads, then the loops above until `stop`; a failing pass is logged
    and the next one runs as planned."""
    await start_up(engine)
    await asyncio.gather(
        _every(stop, SWEEP_INTERVAL, lambda: sweep(engine), "sweeps", engine),
        _checkups(engine, stop),
        _refreshes(engine, stop),
        engine.sightings.run(stop),
    )


async def start_up(engine: Engine) -> tuple[int, int]:
    """`(groups, answers)` loaded in bulk; a failure only means they load one by one."""
    groups = answers = 0
    try:
        groups = await apreload(engine.bot_pk)
    except Exception:
        logger.exception("maintenance.preload_failed", bot=engine.bot_pk)
    # Not on the database thread: Redis only, and enforcement writes must not wait for it.
    load = sync_to_async(engine.memberships.load_shared, thread_sensitive=False)
    try:
        answers = await load(engine.bot_telegram_id)
    except Exception:
        logger.exception("maintenance.membership_load_failed", bot=engine.bot_pk)
    logger.info("maintenance.loaded", bot=engine.bot_pk, groups=groups, answers=answers)
    return groups, answers


async def sweep(engine: Engine) -> None:
    await sweeps.sweep_join_requests(engine)
    await sweeps.sweep_warnings(engine)
    await command_queue.afail_stale(engine.bot_pk, STALE_COMMAND_AGE)
    await write_member_languages(engine)


async def write_member_languages(engine: Engine) -> int:
    """Write down each group's most common member language where it changed, so an
    `auto` group speaks it from the start after a restart; returns groups written.
    Leaders change rarely: most sweeps write nothing."""
    stored = {}
    for chat_id in engine.member_languages.chats():
        known, config = configs.peek(engine.bot_pk, chat_id)
        if known and config is not None:
            stored[chat_id] = config.members_language
    changed = engine.member_languages.changed(stored)
    if changed:
        await health.aset_members_languages(engine.bot_pk, changed)
    return len(changed)


# --- the check-up ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckupRound:
    checked: int
    flagged: int
    skipped_idle: int


async def checkup(engine: Engine, *, spread_over: float = 0.0,
                  stop: asyncio.Event | None = None) -> CheckupRound:
    """One round of /doctor over the bot's enabled, recently active groups, each at
    the lowest priority, evenly spaced over `spread_over` seconds."""
    chat_ids = await health.aenabled_group_chat_ids(engine.bot_pk)
    active = [c for c in chat_ids if engine.active_since(c, CHECKUP_ACTIVE_WITHIN)]
    gap = spread_over / len(active) if active else 0.0
    checked = flagged = 0
    for chat_id in active:
        if stop is not None and stop.is_set():
            break
        config = await engine.config(chat_id)
        if config is not None:
            with in_background():
                problems = [p.what for p in await Commands(engine).diagnose(config) if not p.ok]
            await health.aset_attention(config.pk, problems)
            checked += 1
            flagged += bool(problems)
        if gap and stop is not None and await _wait(stop, gap):
            break
    return CheckupRound(checked, flagged, len(chat_ids) - len(active))


async def _checkups(engine: Engine, stop: asyncio.Event) -> None:
    # The first round waits a minute: start-up has enough to do.
    if await _wait(stop, CHECKUP_DELAY):
        return
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        try:
            await checkup(engine, spread_over=CHECKUP_INTERVAL * CHECKUP_SPREAD, stop=stop)
        except Exception:
            logger.exception("maintenance.checkup_failed", bot=engine.bot_pk)
        if await _wait(stop, max(0.0, CHECKUP_INTERVAL - (loop.time() - started))):
            return


async def _refreshes(engine: Engine, stop: asyncio.Event) -> None:
    async def step() -> None:
        while not stop.is_set() and await telegram_reads.refresh_due(engine):
            pass

    await _every(stop, REFRESH_INTERVAL, step, "refresh", engine)


# --- loops ------------------------------------------------------------------------------


async def _every(stop: asyncio.Event, interval: float, step: Callable[[], Awaitable[object]],
                 name: str, engine: Engine) -> None:
    while not stop.is_set():
        try:
            await step()
        except Exception:
            logger.exception(f"maintenance.{name}_failed", bot=engine.bot_pk)
        if await _wait(stop, interval):
            return


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` unless `stop` is set first; True when it was."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()
