"""pytest fixtures for the Telegram Bot API emulator (loaded by the root conftest.py),
and `supervised`: runbot's runtime in a test's (or a benchmark's) own loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from bots.emulator import TelegramEmulator
from bots.emulator.scene import Scene, make_scene

if TYPE_CHECKING:
    from bots.botrunner import BotRunner, RuntimeOptions

__all__ = ["Scene", "emulator", "make_scene", "scene", "supervised"]


@pytest.fixture
async def emulator(settings: Any) -> AsyncIterator[TelegramEmulator]:
    """A started emulator on a free port; `settings.TELEGRAM_API_URL` points at it.

    Webhook retries are quick (50 ms) so a test of a failing webhook does not wait.
    """
    emu = TelegramEmulator(webhook_retry_delay=0.05)
    await emu.start()
    settings.TELEGRAM_API_URL = emu.api_url
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def scene(emulator: TelegramEmulator) -> Scene:
    """`make_scene` on the `emulator` fixture."""
    return make_scene(emulator)


@contextlib.asynccontextmanager
async def supervised(
    options: RuntimeOptions, bot_pk: int, *, ready_within: float = 20.0
) -> AsyncIterator[BotRunner]:
    """runbot's runtime in this loop for the block: `Supervisor(options).run(stop)`,
    yielding the runner of bot `bot_pk` once it is ready; the block's end drains it
    as SIGTERM would. For the end-to-end tests, the benchmarks and scripts."""
    from bots.supervisor import Supervisor

    supervisor = Supervisor(options)
    stop = asyncio.Event()
    try:
        await supervisor.reconcile()
    except BaseException:
        await supervisor.locks.close()
        raise
    task = asyncio.create_task(supervisor.run(stop), name="nezuko-supervisor")
    try:
        runner = supervisor.runners.get(bot_pk)
        if runner is None or runner.task is None:
            raise RuntimeError(f"the supervisor did not start bot {bot_pk} (inactive, or locked)")
        ready = asyncio.ensure_future(runner.ready.wait())
        try:
            async with asyncio.timeout(ready_within):
                await asyncio.wait({ready, runner.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not runner.ready.is_set():
            failure = None if not runner.task.done() else runner.task.exception()
            raise RuntimeError(f"bot {bot_pk} stopped before it was ready") from failure
        yield runner
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
