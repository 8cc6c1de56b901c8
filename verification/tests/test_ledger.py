"""The restriction ledger: Nezuko lifts only what it placed itself."""

from datetime import UTC, datetime, timedelta

import pytest
from telegram import ChatPermissions

from groups.models import GroupMember

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def moderator(world):
    """Another admin of the group (a moderation bot standing in for a human admin)."""
    s = world.scene
    mod = s.emulator.create_bot(username="mod_bot")
    s.emulator.promote(s.group, mod, by=s.alice)
    return mod


async def test_a_restriction_an_admin_takes_over_is_never_lifted_by_nezuko(world, moderator):
    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    # The admin mutes carol themselves for a day (say, for spam).
    async with s.ptb_bot(moderator) as mod:
        await mod.restrict_chat_member(s.group.id, s.carol.id, ChatPermissions.no_permissions(),
                                       until_date=datetime.now(UTC) + timedelta(days=1))
    await world.settle()
    member = await GroupMember.objects.aget(user_id=s.carol.id)
    assert not member.restricted_by_nezuko
    # Subscribing no longer frees her: the mute is the admin's.
    mark = len(world.emu.calls)
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    assert not [c for c in world.emu.calls[mark:]
                if c.method == "restrictChatMember" and c.bot_id == s.bot.id]
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"


async def test_an_admin_who_frees_a_member_clears_the_ledger_and_the_warning(world, moderator):
    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    warning = await world.emu.wait_for_call("sendMessage", chat_id=s.group.id)
    await world.settle()
    async with s.ptb_bot(moderator) as mod:
        await mod.restrict_chat_member(s.group.id, s.carol.id, ChatPermissions.all_permissions(),
                                       use_independent_chat_permissions=True)
    await world.emu.wait_for_call("deleteMessage", message_id=warning.result["message_id"])
    member = await GroupMember.objects.aget(user_id=s.carol.id)
    assert not member.restricted_by_nezuko
