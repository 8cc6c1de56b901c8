"""runbot's own paths end to end: the supervisor's long polling, the raw-JSON fast
path, the command queue's loop and the engine's executors."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from bots.models import BotCommand
from verification.membership import memberships
from verification.updates import callback_data

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_thousand_subscriber_messages_cost_no_call_beyond_the_first_check(world):
    world, s = world, world.scene
    await world.protect()
    s.emulator.join(s.channel, s.bob)
    await world.settle()
    memberships.clear_local()
    await sync_to_async(memberships.forget)((s.bot.id, s.channel.id, s.bob.id))
    s.emulator.send_message(s.group, s.bob, "first")
    await world.emu.wait_for_call("getChatMember", user_id=s.bob.id)
    await world.settle()
    assert len(world.calls("getChatMember", user_id=s.bob.id)) == 1
    before = len(world.emu.calls)
    for i in range(1000):
        s.emulator.send_message(s.group, s.bob, f"message {i}")
    await world.settle()
    later = [c.method for c in world.emu.calls[before:] if c.method != "getUpdates"]
    # Only the probe's reply: 1,000 messages, zero calls.
    assert later == ["sendMessage"]


async def test_a_stranger_is_restricted_warned_and_freed_by_the_button(world):
    world, s = world, world.scene
    s.emulator.join(s.group, s.carol)
    await world.settle()
    await world.protect()
    s.emulator.send_message(s.group, s.carol, "hello")
    # The runtime handles users concurrently: await each effect, not a barrier.
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    warning = await world.emu.wait_for_call("sendMessage", chat_id=s.group.id)
    # She joins the channel: the chat_member event frees her at once, no click.
    s.emulator.join(s.channel, s.carol)
    await world.emu.wait_for_call("deleteMessage", message_id=warning.result["message_id"])
    assert s.emulator.member(s.group, s.carol).get("can_send_messages", True)
    # Someone else's press on a fresh warning is refused.
    dave = s.emulator.create_user("Dave")
    mark = len(world.emu.calls)
    s.emulator.join(s.group, dave)
    second = await world.emu.wait_for_call("sendMessage", since=mark, chat_id=s.group.id)
    query = world.emu.press_button(s.group, second.result["message_id"], s.bob,
                                   callback_data("joined", dave.id))
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    assert world.emu.callback_answer(query)["show_alert"]


async def test_commands_and_dashboard_commands_run(world):
    world, s = world, world.scene
    since = len(world.emu.calls)
    world.emu.send_message(s.group, s.alice, "/protect @catnews")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    assert "now requires" in reply.params["text"]
    await world.settle()
    from groups.models import ProtectedGroup

    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    # The dashboard asks for a recheck of bob; the runtime's queue runs it.
    command = await BotCommand.objects.acreate(
        bot=world.bot_row, kind="recheck",
        payload={"group_id": group.pk, "chat_id": group.chat_id, "user_id": s.bob.id})
    await world.emu.wait_for_call("restrictChatMember", timeout=10, user_id=s.bob.id)
    # Polling a row another task writes: there is no event to await.
    async with asyncio.timeout(10):
        while (await BotCommand.objects.aget(pk=command.pk)).status != "done":  # noqa: ASYNC110
            await asyncio.sleep(0.05)

