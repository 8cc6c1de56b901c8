"""The user-growth series: member counts sampled once a day (analytics.sampling),
against the emulator through runbot's runtime."""

import pytest

from .test_commands import say

pytestmark = pytest.mark.django_db(transaction=True)


async def test_member_counts_are_sampled_once_a_day(world):
    from analytics import sampling
    from analytics.models import SizeSample

    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    s.emulator.join(s.channel, s.bob)
    # One count per chat: the group and its channel.
    assert await sampling.sample_once(world.engine) == 2
    counts = {row.chat_id: (row.kind, row.count) async for row in SizeSample.objects.all()}
    in_chat = {chat.id: sum(1 for m in chat.members.values() if m.in_chat)
               for chat in (s.group, s.channel)}
    assert counts == {s.group.id: ("group", in_chat[s.group.id]),
                      s.channel.id: ("channel", in_chat[s.channel.id])}
    assert in_chat[s.channel.id] == 3  # alice, the bot, bob
    # Counted already today: a second pass (a restart) asks Telegram nothing.
    since = len(world.emu.calls)
    assert await sampling.sample_once(world.engine) == 0
    assert not [c for c in world.emu.calls[since:] if c.method == "getChatMemberCount"]
