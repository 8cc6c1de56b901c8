"""End-to-end harness: the real engine, polling the Bot API emulator over HTTP.

`world` runs Nezuko's bot exactly as runbot does (`runner.running`: the
production Application factory, `install`, long polling with ALLOWED_UPDATES)
against the emulator's usual scene (bots.testing.make_scene): alice owns the
group "Cats" and the channel "Cat News", bob is a member, carol a stranger,
and the bot is admin in both chats.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from bots.emulator import Chat, TelegramEmulator, User
from bots.models import BotInstance
from bots.ratelimit import Limits, TelegramRateLimiter
from bots.testing import Scene
from groups.config import configs
from groups.models import EnforcedChannel, GroupAdmin, ProtectedGroup
from tests.factories import make_bot, make_channel, make_group
from verification import runner
from verification.engine import Engine


@dataclasses.dataclass
class World:
    emu: TelegramEmulator
    scene: Scene
    engine: Engine
    bot_row: BotInstance
    probe: User
    application: Any = None

    async def settle(self) -> None:
        """Wait until every update sent so far has been handled.

        Updates are handled in order, so once the bot has answered a /help sent
        after them, they are done; then background work (edits) must finish.
        """
        since = len(self.emu.calls)
        self.emu.send_message(self.scene.bot, self.probe, "/help")
        await self.emu.wait_for_call("sendMessage", since=since, chat_id=self.probe.id)
        await self.engine.idle()

    async def protect(self, group: Chat | None = None, channels: list[Chat] | None = None,
                      admins: list[User] | None = None, **fields: Any) -> ProtectedGroup:
        """Record a protected group directly (the /protect command has its own tests)."""
        group = group or self.scene.group
        channels = channels if channels is not None else [self.scene.channel]
        admins = admins if admins is not None else [self.scene.alice, self.scene.bot]
        return await sync_to_async(_protect)(self.bot_row, group, channels, admins, fields)

    def calls(self, method: str, **filters: Any) -> list:
        return self.emu.calls_named(method, **filters)


def _protect(bot_row, group, channels, admins, fields) -> ProtectedGroup:
    rows = [
        EnforcedChannel.objects.filter(bot=bot_row, chat_id=c.id).first()
        or make_channel(bot_row, chat_id=c.id, title=c.title or "", username=c.username or "",
                        invite_link="" if c.username else f"https://t.me/+invite{abs(c.id)}")
        for c in channels
    ]
    fields.setdefault("title", group.title or "")
    protected = make_group(bot_row, channels=rows, chat_id=group.id, **fields)
    for admin in admins:
        GroupAdmin.objects.create(group=protected, user_id=admin.id,
                                  is_creator=admin is admins[0])
    ProtectedGroup.objects.filter(pk=protected.pk).update(admins_refreshed_at=_now())
    configs.clear()
    return protected


def _now():
    from django.utils import timezone

    return timezone.now()


@pytest.fixture
def limits() -> Limits:
    """The production limiter's limits with per-chat pacing relaxed, so that a test
    that sends five replies into one chat does not wait five seconds."""
    return Limits(chat_interval=0.0, group_messages=10_000)


@pytest.fixture
async def world(scene: Scene, settings, limits: Limits) -> World:
    bot_row = await sync_to_async(make_bot)(token=scene.bot.token,
                                           username=scene.bot.username)
    probe = scene.emulator.create_user("Probe", username="probe")
    limiter = TelegramRateLimiter(limits, name="test")
    async with runner.running(bot_row, api_url=scene.emulator.api_url,
                              rate_limiter=limiter) as (application, engine):
        yield World(scene.emulator, scene, engine, bot_row, probe, application)
    # The handlers' thread keeps a connection; PostgreSQL cannot drop the test database
    # while it is open.
    await sync_to_async(connections.close_all)()


@pytest.fixture
async def runbot_world(scene: Scene, settings, tmp_path, limits: Limits) -> World:
    """The same world, run as `manage.py runbot` runs it: runbot's composition of the
    engine (install, raw-JSON fast path, executors, maintenance) under the supervisor."""
    from bots.locks import FileLocks
    from bots.supervisor import Supervisor
    from verification.management.commands.runbot import runtime_options

    settings.TELEGRAM_API_URL = scene.emulator.api_url
    bot_row = await sync_to_async(make_bot)(token=scene.bot.token,
                                           username=scene.bot.username)
    probe = scene.emulator.create_user("Probe", username="probe")
    options = runtime_options()
    options.locks = FileLocks(tmp_path / "locks")
    options.webhook_url = ""
    options.limits = limits
    supervisor = Supervisor(options)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    async with asyncio.timeout(20):
        while bot_row.pk not in supervisor.runners:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.01)
        runner_ = supervisor.runners[bot_row.pk]
        await runner_.ready.wait()
    try:
        yield World(scene.emulator, scene, runner_.engine, bot_row, probe, runner_.application)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
        await sync_to_async(connections.close_all)()
