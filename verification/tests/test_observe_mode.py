"""Observe (shadow) mode (issue 15): nothing deleted, muted or sent; every decision
recorded as "would have restricted"; the impact preview; one switch to enforcing."""

import pytest
from asgiref.sync import sync_to_async

from bots.models import AuditLog
from groups.models import GroupMember, ProtectedGroup
from verification import impact
from verification.membership import memberships
from verification.models import VerificationEvent

pytestmark = pytest.mark.django_db(transaction=True)


async def _status_reply(world, user) -> str:
    s = world.scene
    since = len(world.emu.calls)
    s.emulator.send_message(s.group, user, "/status")
    call = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    return call.params["text"]


async def test_a_non_subscriber_speaks_and_nothing_happens_but_the_record(world):
    s = world.scene
    s.emulator.join(s.group, s.carol)
    await world.settle()
    group = await world.protect(action="observe")
    s.emulator.send_message(s.group, s.carol, "hello")
    s.emulator.send_message(s.group, s.carol, "hello again")
    await world.settle()
    # No delete, no restriction, no message in the group.
    assert not world.calls("deleteMessage")
    assert not world.calls("restrictChatMember")
    assert not world.calls("sendMessage", chat_id=s.group.id)
    assert s.emulator.member(s.group, s.carol)["status"] == "member"
    # Every decision is recorded as "would have restricted"; the ledger says nothing of ours.
    await world.recorder.aflush()
    events = [e async for e in VerificationEvent.objects.filter(user_id=s.carol.id)]
    assert [e.outcome for e in events] == ["would_restrict", "would_restrict"]
    assert not await GroupMember.objects.filter(restricted_by_nezuko=True).aexists()
    # The impact preview (the dashboard's and /status's): one member, two messages today.
    preview = await impact.apreview(group)
    assert (preview.members, preview.decisions, preview.messages_today) == (1, 2, 1 + 1)
    assert preview.channels == (("Cat News", 1),)
    text = await _status_reply(world, s.alice)
    assert "Observe mode" in text
    assert "Would have restricted: 1 member (2 decisions, 2 messages in the last 24 h)" in text


async def test_switching_to_mute_with_one_press_then_enforces(world):
    s = world.scene
    s.emulator.join(s.group, s.carol)
    await world.settle()
    group = await world.protect(action="observe")
    s.emulator.send_message(s.group, s.carol, "hello")
    await world.settle()
    assert not world.calls("restrictChatMember")
    # Alice opens /settings and presses "Mute".
    since = len(world.emu.calls)
    s.emulator.send_message(s.group, s.alice, "/settings")
    menu = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    s.emulator.press_button(s.group, menu.result["message_id"], s.alice, "nz:s:action:mute")
    await world.emu.wait_for_call("answerCallbackQuery", since=since)
    await world.settle()
    assert (await ProtectedGroup.objects.aget(pk=group.pk)).action == "mute"
    assert await AuditLog.objects.filter(action="group.settings_changed").acount() == 1
    # Carol's next message is enforced.
    s.emulator.send_message(s.group, s.carol, "still here")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    assert not s.emulator.member(s.group, s.carol)["can_send_messages"]


async def test_the_preview_counts_known_members_who_are_not_subscribed(world):
    s = world.scene
    group = await world.protect(action="observe")
    # Bob and carol are known members; the cache knows bob is subscribed, carol is not.
    for person in (s.bob, s.carol, world.probe):
        await sync_to_async(GroupMember.objects.create)(group=group, user_id=person.id,
                                                        first_name=person.first_name)
    memberships.remember((s.bot.id, s.channel.id, s.bob.id), True)
    memberships.remember((s.bot.id, s.channel.id, s.carol.id), False)
    preview = await impact.apreview(group)
    # Probe was never checked: counted apart, not guessed.
    assert (preview.known_members, preview.known_unsubscribed, preview.known_unchecked) \
        == (2, 1, 1)
    assert preview.decisions == 0


async def test_protect_offers_observe_mode(world):
    s = world.scene
    since = len(world.emu.calls)
    s.emulator.send_message(s.group, s.alice, f"/protect @{s.channel.username}")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    buttons = [b for row in reply.params["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == [{"text": "Observe first (mute nobody)",
                        "callback_data": "nz:s:action:observe"}]
    s.emulator.press_button(s.group, reply.result["message_id"], s.alice,
                            "nz:s:action:observe")
    await world.emu.wait_for_call("answerCallbackQuery", since=since)
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert group.action == "observe"


def test_an_owed_restriction_is_moot_once_the_group_observes():
    from verification.decisions import Check, Moot, decide_owed
    from verification.tests.test_decisions import CAROL, NEWS, make_config

    config = make_config(action="observe", channels=(NEWS,))
    decision = decide_owed("restrict", Check(CAROL, (NEWS,)), config, {NEWS.chat_id: False})
    assert decision == Moot(config.chat_id, CAROL, "observe mode")
