"""Two runbot processes on one PostgreSQL: one polls each token, the other takes over.

Off the bus the second waits on the bot's lock; on the update bus (the default with
REDIS_URL) the two share the bot's partitions and one polls, under the same lock."""

from __future__ import annotations

import signal

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from bots.models import BotStatus
from bots.tests.runtime_support import (
    Child,
    child_env,
    close_db_threads,  # noqa: F401
    database_url,
    eventually,
    make_bot,
    postgres_only,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_db_threads"),
]


async def run_by(bot, pid: int) -> bool:
    status = await BotStatus.objects.filter(bot=bot).afirst()
    return bool(status and status.state == "running" and status.host.endswith(f":{pid}"))


async def answered_help(emu, bot, person) -> None:
    since = len(emu.calls)
    emu.send_message(bot, person, "/help")
    await emu.wait_for_call("sendMessage", timeout=30, since=since, chat_id=person.id)


@postgres_only
async def test_only_one_process_polls_and_the_other_takes_over_when_it_dies(scene):
    """The lock path: with the bus off (NEZUKO_UPDATE_BUS=off), as `--bot` pins need."""
    emu = scene.emulator
    row = await sync_to_async(make_bot)(scene.bot.token, username=scene.bot.username)
    env = child_env(DATABASE_URL=database_url(), TELEGRAM_API_URL=emu.api_url, BOT_TOKEN="",
                    NEZUKO_UPDATE_BUS="off")
    first = await Child.start("runbot", "--no-web", env=env)
    second = None
    try:
        await first.wait_for_output("bot.running")
        second = await Child.start("runbot", "--no-web", env=env)
        # The second process finds the bot's lock taken and waits.
        await second.wait_for_output("bot.lock_busy")
        assert await run_by(row, first.process.pid)
        await answered_help(emu, scene.bot, scene.carol)

        # The first one dies without a goodbye; the second takes over.
        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()
        await eventually(lambda: run_by(row, second.process.pid), within=60)
        await answered_help(emu, scene.bot, scene.carol)

        # SIGTERM: a clean exit and a final heartbeat.
        assert await second.stop() == 0
        status = await BotStatus.objects.aget(bot=row)
        assert status.state == BotStatus.State.STOPPED
    finally:
        for child in (first, second):
            if child is not None and child.process.returncode is None:
                await child.stop(signal.SIGKILL)


@postgres_only
@pytest.mark.skipif(not settings.REDIS_URL, reason="the update bus needs REDIS_URL")
async def test_on_the_bus_one_process_polls_and_the_other_takes_over_when_it_dies(scene):
    """The same on the update bus: whichever of the two polls is killed; the other
    polls within the bus's promise and answers."""
    emu = scene.emulator
    row = await sync_to_async(make_bot)(scene.bot.token, username=scene.bot.username)
    env = child_env(DATABASE_URL=database_url(), TELEGRAM_API_URL=emu.api_url, BOT_TOKEN="")
    children = [await Child.start("runbot", "--no-web", env=env) for _ in range(2)]
    try:
        for child in children:
            await child.wait_for_output("bus.members")
        await answered_help(emu, scene.bot, scene.carol)

        async def polled_by_one() -> bool:
            return any([await run_by(row, c.process.pid) for c in children])

        await eventually(polled_by_one, within=60)
        poller, other = children if await run_by(row, children[0].process.pid) \
            else children[::-1]
        poller.process.send_signal(signal.SIGKILL)
        await poller.process.wait()
        await eventually(lambda: run_by(row, other.process.pid), within=60)
        await answered_help(emu, scene.bot, scene.carol)
        assert await other.stop() == 0
    finally:
        for child in children:
            if child.process.returncode is None:
                await child.stop(signal.SIGKILL)
