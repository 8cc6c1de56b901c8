"""Raids through the whole runtime: runbot's composition (the real engine) under the supervisor.

The emulator enforces Telegram's flood limits. Raiders' membership is known
up front (subscribers joined the channel, the others are remembered as
non-members) so a test spends its time on restrictions, not on lookups; the
benchmark (benchmarks/runtime.py) runs the 1,000-member raid with lookups.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from bots.emulator import TelegramEmulator
from bots.locks import FileLocks
from bots.models import BotStatus
from bots.supervisor import Supervisor
from bots.testing import Scene
from bots.tests.runtime_support import close_db_threads, eventually  # noqa: F401
from groups.config import configs
from groups.models import GroupAdmin, ProtectedGroup
from nezuko.runtime import runtime_options
from tests.factories import make_bot, make_channel, make_group
from verification.membership import memberships

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_db_threads"),
]


def protect(scene: Scene):
    """The bot's row and Cats protected by Cat News, as /protect would leave them."""
    bot_row = make_bot(token=scene.bot.token, username=scene.bot.username)
    channel = make_channel(bot_row, chat_id=scene.channel.id, title="Cat News", username="catnews")
    group = make_group(bot_row, channels=[channel], chat_id=scene.group.id, title="Cats")
    for admin in (scene.alice, scene.bot):
        GroupAdmin.objects.create(group=group, user_id=admin.id, is_creator=admin is scene.alice)
    ProtectedGroup.objects.filter(pk=group.pk).update(admins_refreshed_at=timezone.now())
    configs.clear()
    return bot_row


def supervisor(tmp_path, **overrides: Any) -> Supervisor:
    options = runtime_options()
    options.locks = FileLocks(tmp_path / "locks")
    options.webhook_url = ""
    options.reconcile_interval = 0.5
    for name, value in overrides.items():
        setattr(options, name, value)
    return Supervisor(options)


def raiders(emu: TelegramEmulator, scene: Scene, count: int, *, subscribed: int = 0) -> list:
    """`count` strangers; the first `subscribed` follow the channel, the rest are known not to."""
    people = [emu.create_user(f"Raider {i}") for i in range(count)]
    for person in people[:subscribed]:
        memberships.remember((scene.bot.id, scene.channel.id, person.id), True)
    for person in people[subscribed:]:
        memberships.remember((scene.bot.id, scene.channel.id, person.id), False)
    return people


def restricted(emu: TelegramEmulator, scene: Scene, people: list) -> list:
    return [p for p in people if emu.member(scene.group, p)["status"] == "restricted"]


def until(condition: Callable[[], bool]):
    async def check() -> bool:
        return condition()

    return check


async def test_a_raid_of_500_joins_is_drained_without_a_single_429(scene, tmp_path):
    emu = scene.emulator
    await sync_to_async(protect)(scene)
    people = raiders(emu, scene, 500, subscribed=250)
    emu.flood_limits = True
    stop = asyncio.Event()
    run = asyncio.create_task(supervisor(tmp_path).run(stop))
    await emu.wait_for_poll(scene.bot, timeout=15)
    since = len(emu.calls)

    for person in people:
        emu.join(scene.group, person)
    strangers = people[250:]
    await eventually(until(lambda: len(restricted(emu, scene, strangers)) == 250), within=120)

    stop.set()
    await asyncio.wait_for(run, 60)
    calls = emu.calls[since:]
    # Every stranger is restricted, no subscriber is, and Telegram never said 429.
    assert restricted(emu, scene, people[:250]) == []
    assert [c for c in calls if c.error_code == 429] == []
    # Warnings are coalesced: far fewer messages than raiders, within 20 a minute.
    warnings = [
        c for c in calls if c.method == "sendMessage" and c.params.get("chat_id") == scene.group.id
    ]
    assert 1 <= len(warnings) <= 20


async def raid_then_stop(scene, tmp_path, people: list, *, stop_at: int,
                         **overrides: Any) -> None:
    """A supervisor runs while `people` join; it is stopped (SIGTERM: runbot only sets
    the stop event) once `stop_at` of them are restricted."""
    emu = scene.emulator
    stop = asyncio.Event()
    run = asyncio.create_task(supervisor(tmp_path, **overrides).run(stop))
    await emu.wait_for_poll(scene.bot, timeout=15)
    for person in people:
        emu.join(scene.group, person)
    await eventually(until(lambda: len(restricted(emu, scene, people)) >= stop_at), within=60)
    stop.set()
    await asyncio.wait_for(run, 30)


async def restart_until_all_restricted(scene, tmp_path, people: list,
                                       **overrides: Any) -> None:
    stop = asyncio.Event()
    run = asyncio.create_task(supervisor(tmp_path, **overrides).run(stop))
    emu = scene.emulator
    await eventually(until(lambda: len(restricted(emu, scene, people)) == len(people)),
                     within=120)
    stop.set()
    await asyncio.wait_for(run, 60)


async def test_a_stop_mid_raid_loses_nothing_and_acts_once_after_the_restart(scene, tmp_path):
    emu = scene.emulator
    bot_row = await sync_to_async(protect)(scene)
    people = raiders(emu, scene, 200)
    emu.flood_limits = True
    # Fetch little ahead of handling, so the stop leaves most of the raid at Telegram.
    # The in-process path (bus=None, as with NEZUKO_UPDATE_BUS=off): only its poller
    # fetches no more than max_pending_updates ahead. On the bus (the default with
    # REDIS_URL) the poller's back-pressure is a backlog read every 0.2 s, so a raid this
    # size is in Redis before the stop; the bus's own stop and kill mid-raid are
    # test_a_drain_deadline_mid_raid... below and tests/faults/test_scale_out.py.
    await raid_then_stop(scene, tmp_path, people, stop_at=40, max_pending_updates=40,
                         bus=None)
    done_before = {p.id for p in restricted(emu, scene, people)}
    calls_before = len(emu.calls)
    assert (await BotStatus.objects.aget(bot=bot_row)).state == BotStatus.State.STOPPED
    assert len(done_before) < len(people)

    # After the restart every raider ends up restricted: nothing was lost...
    await restart_until_all_restricted(scene, tmp_path, people, bus=None)
    # ...and nobody handled before the stop was handled a second time.
    again = {
        c.params.get("user_id")
        for c in emu.calls[calls_before:]
        if c.method == "restrictChatMember"
    }
    assert again and not (again & done_before)


async def test_a_drain_deadline_mid_raid_leaves_the_rest_journaled_for_the_restart(
        scene, tmp_path):
    emu = scene.emulator
    await sync_to_async(protect)(scene)
    people = raiders(emu, scene, 150)
    emu.flood_limits = True
    # Everything is fetched (so confirmed to Telegram) long before it is handled, and
    # the drain gives up almost at once: the journal must hold what was not finished.
    await raid_then_stop(scene, tmp_path, people, stop_at=10, drain_timeout=0.2)
    left = len(people) - len(restricted(emu, scene, people))
    assert left > 0

    await restart_until_all_restricted(scene, tmp_path, people)
    mutes: dict[int, int] = {}
    for call in emu.calls_named("restrictChatMember"):
        mutes[call.params["user_id"]] = mutes.get(call.params["user_id"], 0) + 1
    doubled = [user for user, count in mutes.items() if count > 1]
    print(f"drain deadline mid-raid: left_at_stop={left} lost=0 doubled={len(doubled)}")
    # Every raider is restricted after the restart, and no one twice.
    assert doubled == []
