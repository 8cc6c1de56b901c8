"""The dashboard's commands, run through the runtime's CommandQueue and the engine."""

import pytest
from asgiref.sync import sync_to_async

from bots.command_queue import CommandQueue
from bots.models import BotCommand
from groups.models import GroupMember
from verification.executors import EXECUTORS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def command_interval() -> float:
    # These tests run the queue themselves, as the runtime's loop does; that loop
    # looks once at start, then not again while a test runs, so it races no claim.
    return 3600.0


async def queue_command(world, kind, group, user=None) -> BotCommand:
    payload = {"group_id": group.pk, "chat_id": group.chat_id}
    if user is not None:
        payload["user_id"] = user.id
    return await BotCommand.objects.acreate(bot=world.bot_row, kind=kind, payload=payload)


async def run(world, command: BotCommand) -> BotCommand:
    # The runtime passes EXECUTORS and the bot's Application, as runbot does.
    queue = CommandQueue(world.bot_row.pk, world.application, EXECUTORS)
    assert await queue.run_one()
    await world.engine.idle()
    return await BotCommand.objects.aget(pk=command.pk)


async def test_unmute_from_the_dashboard_lifts_any_restriction(world):
    s = world.scene
    group = await world.protect()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    done = await run(world, await queue_command(world, "unmute", group, s.carol))
    assert done.status == "done" and done.result == {"unmuted": True}
    assert s.emulator.member(s.group, s.carol).get("can_send_messages", True)
    member = await GroupMember.objects.aget(user_id=s.carol.id)
    assert not member.restricted_by_nezuko


async def test_recheck_restricts_a_member_who_is_not_subscribed(world):
    s = world.scene
    group = await world.protect()
    done = await run(world, await queue_command(world, "recheck", group, s.bob))
    assert done.result == {"subscribed": False, "missing_channel_ids": [s.channel.id]}
    assert s.emulator.member(s.group, s.bob)["status"] == "restricted"
    # Bob subscribes; the next recheck lifts it.
    s.emulator.join(s.channel, s.bob)
    await world.settle()
    done = await run(world, await queue_command(world, "recheck", group, s.bob))
    assert done.result["subscribed"] is True


async def test_ban_unban_refresh_admins_and_warm_cache(world):
    s = world.scene
    group = await world.protect()
    await sync_to_async(GroupMember.objects.create)(group=group, user_id=s.bob.id)
    done = await run(world, await queue_command(world, "ban", group, s.bob))
    assert done.status == "done" and s.emulator.member(s.group, s.bob)["status"] == "kicked"
    done = await run(world, await queue_command(world, "unban", group, s.bob))
    assert done.status == "done" and s.emulator.member(s.group, s.bob)["status"] == "left"
    done = await run(world, await queue_command(world, "refresh_admins", group))
    assert done.result["admins"] >= 2
    await GroupMember.objects.filter(user_id=s.bob.id).aupdate(status="member")
    done = await run(world, await queue_command(world, "warm_cache", group))
    assert done.result == {"members": 1, "answered": 1}


async def test_a_command_for_a_group_the_bot_does_not_protect_fails_with_a_reason(world):
    command = await BotCommand.objects.acreate(
        bot=world.bot_row, kind="unmute", payload={"chat_id": -100404, "user_id": 1})
    done = await run(world, command)
    assert done.status == "failed" and "does not protect" in done.error
