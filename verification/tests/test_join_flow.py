"""Flow 2: joins, from chat_member updates and from new_chat_members messages."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_restricts_a_non_subscriber_on_join(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"
    # One warning, no message to delete.
    assert len(world.calls("sendMessage", chat_id=s.group.id)) == 1
    assert not world.calls("deleteMessage")


async def test_a_subscriber_joins_freely(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.channel, s.carol)
    s.emulator.join(s.group, s.carol)
    await world.settle()
    assert not world.calls("restrictChatMember")


async def test_chat_member_and_new_chat_members_are_handled_once(world):
    s = world.scene
    await world.protect()
    # Being added by an admin sends both a chat_member update and a service message.
    s.emulator.add_member(s.group, s.carol, by=s.alice)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    assert len(world.calls("restrictChatMember", user_id=s.carol.id)) == 1
    assert len(world.calls("sendMessage", chat_id=s.group.id)) == 1


async def test_an_admin_who_joins_is_never_restricted(world):
    s = world.scene
    await world.protect(admins=[s.alice, s.bot, s.carol])
    s.emulator.join(s.group, s.carol)
    await world.settle()
    assert not world.calls("restrictChatMember")


async def test_a_user_who_leaves_and_rejoins_within_the_cache_ttl_is_checked_again(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.channel, s.carol)
    s.emulator.join(s.group, s.carol)
    await world.settle()
    assert not world.calls("restrictChatMember")
    # She leaves the channel and the group, then comes back to the group only.
    s.emulator.leave(s.channel, s.carol)
    s.emulator.leave(s.group, s.carol)
    await world.settle()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    # The channel event updated the cache: no stale "subscribed" answer let her in.
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"


async def test_a_muted_user_who_subscribes_while_away_is_unmuted_on_return(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    # She leaves (Telegram keeps her restriction), subscribes, and comes back.
    s.emulator.leave(s.group, s.carol)
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    mark = len(world.emu.calls)
    s.emulator.join(s.group, s.carol)
    unmute = await world.emu.wait_for_call("restrictChatMember", since=mark, user_id=s.carol.id)
    assert unmute.params["permissions"]["can_send_messages"] is True
