"""A bot's periodic work, run by runbot beside each bot (`RuntimeOptions.bot_tasks`).

Every minute: decline join requests nobody answered in time, delete warnings a
restart left behind, and fail dashboard commands a dead runbot left running.
Every `CHECKUP_INTERVAL`: the /doctor check-up of every protected group.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime

import structlog

from bots import command_queue
from verification.commands import Commands
from verification.engine import Engine
from verification.flows import sweeps

logger = structlog.get_logger(__name__)

SWEEP_INTERVAL = 60.0
CHECKUP_INTERVAL = 15 * 60.0
CHECKUP_DELAY = 60.0
# Executors finish in seconds; a command RUNNING this long was orphaned by a dead runbot.
STALE_COMMAND_AGE = datetime.timedelta(minutes=15)


async def maintain(engine: Engine, stop: asyncio.Event) -> None:
    """The sweeps every `SWEEP_INTERVAL` and the check-up every `CHECKUP_INTERVAL`,
    until `stop`; a failing pass is logged and the next one runs as planned."""
    loop = asyncio.get_running_loop()
    # The first check-up waits a minute: start-up has enough to do.
    last_checkup = loop.time() - CHECKUP_INTERVAL + CHECKUP_DELAY
    while not stop.is_set():
        try:
            await sweeps.sweep_join_requests(engine)
            await sweeps.sweep_warnings(engine)
            await command_queue.afail_stale(engine.bot_pk, STALE_COMMAND_AGE)
            if loop.time() - last_checkup >= CHECKUP_INTERVAL:
                last_checkup = loop.time()
                await Commands(engine).checkup()
        except Exception:
            logger.exception("maintenance.failed", bot=engine.bot_pk)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=SWEEP_INTERVAL)
