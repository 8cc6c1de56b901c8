"""Flows 4 and 5: leaving and joining a linked channel, with no click and no poll."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


async def test_leaving_the_channel_restricts_in_every_linked_group(world):
    s = world.scene
    dogs = s.emulator.create_supergroup("Dogs", creator=s.alice)
    s.emulator.promote(dogs, s.bot, by=s.alice)
    await world.protect()
    await world.protect(group=dogs)
    s.emulator.join(s.channel, s.carol)
    s.emulator.join(s.group, s.carol)
    s.emulator.join(dogs, s.carol)
    s.emulator.send_message(s.group, s.carol, "hi cats")
    s.emulator.send_message(dogs, s.carol, "hi dogs")
    await world.settle()
    assert not world.calls("restrictChatMember")
    # Carol leaves the shared channel.
    s.emulator.leave(s.channel, s.carol)
    await world.emu.wait_for_call("restrictChatMember", chat_id=s.group.id, user_id=s.carol.id)
    await world.emu.wait_for_call("restrictChatMember", chat_id=dogs.id, user_id=s.carol.id)
    await world.settle()
    # She is restricted and warned in both groups, with no getChatMember for that channel.
    assert len(world.calls("sendMessage", chat_id=s.group.id)) == 1
    assert len(world.calls("sendMessage", chat_id=dogs.id)) == 1
    assert not world.calls("getChatMember", chat_id=s.channel.id, user_id=s.carol.id)


async def test_joining_the_channel_lifts_the_restriction_and_removes_the_warning(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    (warning,) = world.calls("sendMessage", chat_id=s.group.id)
    # Carol complies: no button press needed.
    s.emulator.join(s.channel, s.carol)
    unmute = await world.emu.wait_for_call(
        "restrictChatMember", since=len(world.emu.calls), user_id=s.carol.id)
    await world.settle()
    assert s.emulator.member(s.group, s.carol).get("can_send_messages", True)
    assert unmute.params["permissions"]
    assert world.calls("deleteMessage", message_id=warning.result["message_id"])


async def test_joining_the_channel_does_not_lift_a_restriction_placed_by_an_admin(world):
    from groups.models import GroupMember

    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    # An admin took the restriction over (the ledger no longer says it is Nezuko's).
    await GroupMember.objects.filter(user_id=s.carol.id).aupdate(restricted_by_nezuko=False)
    since = len(world.emu.calls)
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    # It should leave her muted.
    assert not [c for c in world.emu.calls[since:] if c.method == "restrictChatMember"]
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"
