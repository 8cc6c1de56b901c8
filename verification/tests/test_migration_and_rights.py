"""Flow 7 (the bot's own rights) and a group that becomes a supergroup."""

import pytest

from groups.models import EnforcedChannel, ProtectedGroup
from verification.commands import Commands

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_group_that_migrates_keeps_its_protection_under_the_new_id(world):
    s = world.scene
    basic = s.emulator.create_group("Old Cats", creator=s.alice)
    s.emulator.promote(basic, s.bot, by=s.alice)
    await world.protect(group=basic)
    supergroup = s.emulator.migrate(basic, by=s.alice)
    await world.settle()
    group = await ProtectedGroup.objects.aget()
    assert group.chat_id == supergroup.id
    # Enforcement continues there.
    s.emulator.join(supergroup, s.carol)
    await world.emu.wait_for_call("restrictChatMember", chat_id=supergroup.id,
                                  user_id=s.carol.id)


async def test_the_bot_losing_its_rights_flags_the_group_and_the_channel(world):
    s = world.scene
    await world.protect()
    s.emulator.demote(s.channel, s.bot, by=s.alice)
    await world.settle()
    channel = await EnforcedChannel.objects.aget(chat_id=s.channel.id)
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert not channel.bot_is_admin
    assert group.needs_attention
    # Promoted again: the flag clears.
    s.emulator.promote(s.channel, s.bot, by=s.alice)
    await world.settle()
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert not group.needs_attention


async def test_the_scheduled_checkup_flags_what_doctor_would_say(world):
    s = world.scene
    await world.protect()
    # One check-up pass: all is well.
    assert await Commands(world.engine).checkup() == 0
    # The bot loses "delete messages" in the group (no my_chat_member needed to notice).
    s.emulator.promote(s.group, s.bot, by=s.alice, can_delete_messages=False,
                       can_restrict_members=True)
    await world.settle()
    assert await Commands(world.engine).checkup() == 1
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert group.needs_attention and "can delete messages" in group.attention_reason
