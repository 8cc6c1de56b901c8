"""Flow 3: join requests to a group that uses them."""

import datetime

import pytest
from django.utils import timezone

from verification.flows import sweeps
from verification.models import PendingJoinRequest
from verification.updates import callback_data

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def gated(world):
    s = world.scene
    gated = s.emulator.create_supergroup("Gated Cats", creator=s.alice, join_by_request=True)
    s.emulator.promote(gated, s.bot, by=s.alice)
    await world.protect(group=gated)
    return gated


async def test_it_approves_a_subscriber_at_once(world, gated):
    s = world.scene
    s.emulator.join(s.channel, s.carol)
    s.emulator.request_join(gated, s.carol)
    await world.emu.wait_for_call("approveChatJoinRequest", user_id=s.carol.id)
    await world.settle()
    assert s.emulator.member(gated, s.carol)["status"] == "member"


async def test_it_asks_the_others_in_private_and_approves_them_when_they_join(world, gated):
    s = world.scene
    s.emulator.request_join(gated, s.carol)
    message = await world.emu.wait_for_call("sendMessage", chat_id=s.carol.id)
    # The private message names the channel and offers its button.
    assert "Cat News" in message.params["text"]
    assert not world.calls("approveChatJoinRequest")
    s.emulator.join(s.channel, s.carol)
    await world.emu.wait_for_call("approveChatJoinRequest", user_id=s.carol.id)
    await world.settle()
    assert s.emulator.member(gated, s.carol)["status"] == "member"
    assert not await PendingJoinRequest.objects.aexists()


async def test_the_private_button_approves_once_they_comply(world, gated):
    s = world.scene
    s.emulator.request_join(gated, s.carol)
    message = await world.emu.wait_for_call("sendMessage", chat_id=s.carol.id)
    data = callback_data("request", gated.id)
    # Pressed too early: still missing.
    query = world.emu.press_button(s.bot, message.result["message_id"], s.carol, data)
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    assert "Cat News" in world.emu.callback_answer(query)["text"]
    assert not world.calls("approveChatJoinRequest")


async def test_requests_that_wait_too_long_are_declined(world, gated):
    s = world.scene
    s.emulator.request_join(gated, s.carol)
    await world.emu.wait_for_call("sendMessage", chat_id=s.carol.id)
    await world.settle()
    await PendingJoinRequest.objects.all().aupdate(
        expires_at=timezone.now() - datetime.timedelta(seconds=1))
    # One sweep step declines it.
    assert await sweeps.sweep_join_requests(world.engine) == 1
    assert world.calls("declineChatJoinRequest", user_id=s.carol.id)
    assert await sweeps.sweep_join_requests(world.engine) == 0
