"""End-to-end harness: the real engine, polling the Bot API emulator over HTTP.

`world` runs Nezuko's bot exactly as `manage.py runbot` runs it: the
supervisor with runbot's composition (`nezuko.runtime.runtime_options()`:
install, raw-JSON fast path, per-person processor, executors, maintenance,
the recorder and its subscribers, /login), long polling with ALLOWED_UPDATES,
against the emulator's usual scene (bots.testing.make_scene): alice owns the
group "Cats" and the channel "Cat News", bob is a member, carol a stranger, and
the bot is admin in both chats. There is no other runtime to test.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from bots.botrunner import BotRunner, RuntimeOptions
from bots.emulator import Chat, TelegramEmulator, User
from bots.locks import FileLocks
from bots.models import BotInstance
from bots.ratelimit import Limits
from bots.testing import Scene, supervised
from groups.config import configs
from groups.models import EnforcedChannel, GroupAdmin, ProtectedGroup
from nezuko.runtime import runtime_options
from tests.factories import make_bot, make_channel, make_group
from verification import command_menus
from verification.engine import Engine
from verification.recorder import EventRecorder


@dataclasses.dataclass
class EngineWorld:
    """The running bot of one end-to-end test and the scene it enforces."""

    emu: TelegramEmulator
    scene: Scene
    engine: Engine
    bot_row: BotInstance
    probe: User
    application: Any
    runner: BotRunner

    async def settle(self) -> None:
        """Wait until every update sent so far has been handled.

        getUpdates returns updates in order, so once the bot has answered a
        /help sent after them, they have all been taken: decided by the fast
        path, or queued. Different people's updates are handled concurrently,
        so then wait for the queue to be done, and for background work (edits).
        """
        since = len(self.emu.calls)
        self.emu.send_message(self.scene.bot, self.probe, "/help")
        await self.emu.wait_for_call("sendMessage", since=since, chat_id=self.probe.id)
        await self.application.update_queue.join()
        await self.engine.idle()

    async def protect(self, group: Chat | None = None, channels: list[Chat] | None = None,
                      admins: list[User] | None = None, **fields: Any) -> ProtectedGroup:
        """Record a protected group directly (the /protect command has its own tests)."""
        group = group or self.scene.group
        channels = channels if channels is not None else [self.scene.channel]
        admins = admins if admins is not None else [self.scene.alice, self.scene.bot]
        return await sync_to_async(_protect)(self.bot_row, group, channels, admins, fields)

    @property
    def recorder(self) -> EventRecorder:
        """The runtime's event recorder (built by the composition root)."""
        return self.engine.recorder

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
def menu_languages() -> tuple[str, ...] | None:
    """The languages whose command menus the runtime sets at start-up: English alone
    (two menus, not twenty: the P2 pacing would add a second and a half to every
    test); a module testing the menus overrides this with None (every language)."""
    return ("en",)


@pytest.fixture
def command_interval() -> float:
    """How often the runtime looks for dashboard commands: production's, unless a
    module that runs the queue itself overrides this (two claimers would race)."""
    return RuntimeOptions.command_interval


@pytest.fixture
def event_subscribers() -> list:
    """Listeners the world's runtime adds to its recorder; a module overrides this."""
    return []


async def _menus_set(emulator: TelegramEmulator, count: int) -> None:
    """Wait for the start-up's `count` setMyCommands (a fresh emulator has no menu)."""
    since = 0
    for _ in range(count):
        call = await emulator.wait_for_call("setMyCommands", timeout=30, since=since)
        since = emulator.calls.index(call) + 1


@pytest.fixture
async def world(scene: Scene, settings, tmp_path, limits: Limits,
                command_interval: float, event_subscribers: list,
                menu_languages: tuple[str, ...] | None) -> EngineWorld:
    settings.TELEGRAM_API_URL = scene.emulator.api_url
    bot_row = await sync_to_async(make_bot)(token=scene.bot.token,
                                           username=scene.bot.username)
    probe = scene.emulator.create_user("Probe", username="probe")
    options = runtime_options(subscribers=event_subscribers)
    options.locks = FileLocks(tmp_path / "locks")
    options.webhook_url = ""  # polling, whatever WEBHOOK_URL the environment sets
    options.limits = limits
    options.command_interval = command_interval
    options.bot_tasks = [command_menus.publisher(menu_languages)
                         if task is command_menus.publish else task for task in options.bot_tasks]
    try:
        async with supervised(options, bot_row.pk) as runner:
            # The bot's start-up step sets its command menus (one per scope and
            # language); tests that count calls start once it is done.
            await _menus_set(scene.emulator, len(command_menus.wanted(menu_languages)))
            yield EngineWorld(scene.emulator, scene, runner.engine, bot_row, probe,
                              runner.application, runner)
    finally:
        # The handlers' thread keeps a connection; PostgreSQL cannot drop the test
        # database while it is open.
        await sync_to_async(connections.close_all)()
