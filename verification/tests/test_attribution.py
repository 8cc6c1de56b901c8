"""The growth funnel, end to end through runbot's runtime: each protected group's own
invite link, joins attributed to the group that brought them, and the funnel's counts."""

import pytest
from asgiref.sync import sync_to_async

from groups.models import Attribution, FunnelDay, GroupChannel, ProtectedGroup
from verification.models import VerificationEvent

from .test_commands import say

pytestmark = pytest.mark.django_db(transaction=True)


def join_button_url(call) -> str:
    """The URL of the warning's first "Join …" button."""
    rows = call.params["reply_markup"]["inline_keyboard"]
    return next(b["url"] for row in rows for b in row if b["text"].startswith("Join"))


async def warn(world, user):
    """`user` joins the group unsubscribed: restricted and warned. Returns the warning."""
    since = len(world.emu.calls)
    world.emu.join(world.scene.group, user)
    await world.emu.wait_for_call("restrictChatMember", since=since, user_id=user.id)
    return await world.emu.wait_for_call("sendMessage", since=since,
                                         chat_id=world.scene.group.id)


async def test_a_warned_user_joining_through_the_groups_link_is_attributed_exactly(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    # /protect made the group its own link to the channel, named for the group.
    (made,) = world.calls("createChatInviteLink", chat_id=s.channel.id)
    assert made.params["name"] == "Nezuko: Cats"
    link = await GroupChannel.objects.aget(channel__chat_id=s.channel.id)
    assert link.invite_link == made.result["invite_link"]

    # Carol is warned; the Join button is the group's own link, not t.me/catnews.
    warning = await warn(world, s.carol)
    assert join_button_url(warning) == link.invite_link
    # She joins through it: Telegram says so in the chat_member update, and she is
    # unmuted with no click.
    since = len(world.emu.calls)
    s.emulator.join(s.channel, s.carol, invite_link=join_button_url(warning))
    await world.emu.wait_for_call("restrictChatMember", since=since, user_id=s.carol.id)
    await world.settle()

    # It should be attributed "exact" to this group, and verified here.
    journey = await Attribution.objects.aget(user_id=s.carol.id)
    assert journey.group_id == link.group_id and journey.channel_chat_id == s.channel.id
    assert journey.how == "exact"
    assert journey.warned_at <= journey.joined_at <= journey.verified_at
    assert journey.left_at is None

    # Dave joins the channel with no warning and no link: not this group's doing.
    dave = s.emulator.create_user("Dave")
    s.emulator.join(s.channel, dave)
    # Erin is warned too and never joins.
    erin = s.emulator.create_user("Erin")
    await warn(world, erin)
    await world.settle()
    await world.engine.recorder.aflush()

    # The funnel's counts match the events: two warned (two restrictions), one joined
    # (exact), one verified (one unmute after the join).
    funnel = await sync_to_async(FunnelDay.objects.filter(group_id=link.group_id).funnel)()
    restricted = await VerificationEvent.objects.filter(
        group_id=link.group_id, outcome="restricted").acount()
    unmuted = await VerificationEvent.objects.filter(
        group_id=link.group_id, outcome="unmuted", detail="channel_join").acount()
    assert (funnel["warned"], restricted) == (2, 2)
    assert (funnel["joined_exact"], funnel["joined_likely"]) == (1, 0)
    assert (funnel["verified"], unmuted) == (1, 1)
    assert funnel["started"] == 2

    # /status shows the same funnel to the group's admins.
    text = await say(world, s.group, s.alice, "/status")
    assert "warned 2 → joined 1 (1 through this group's link, 0 likely) → verified 1" in text


async def test_a_join_without_the_link_after_a_warning_counts_as_likely(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    await warn(world, s.carol)
    since = len(world.emu.calls)
    # She finds the channel by its public name instead of the button.
    s.emulator.join(s.channel, s.carol)
    await world.emu.wait_for_call("restrictChatMember", since=since, user_id=s.carol.id)
    await world.settle()
    journey = await Attribution.objects.aget(user_id=s.carol.id)
    assert journey.how == "likely" and journey.verified_at is not None
    # Leaving the channel again is the end of "still subscribed".
    s.emulator.leave(s.channel, s.carol)
    await world.emu.wait_for_call("restrictChatMember", since=len(world.emu.calls) - 1,
                                  user_id=s.carol.id)
    await world.settle()
    journey = await Attribution.objects.aget(user_id=s.carol.id)
    assert journey.left_at is not None


async def test_unprotect_revokes_the_groups_links_and_the_buttons_fall_back(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    link = await GroupChannel.objects.aget(channel__chat_id=s.channel.id)
    url = link.invite_link
    await say(world, s.group, s.alice, "/unprotect")
    # It should revoke that link in Telegram and forget it.
    (revoked,) = world.calls("revokeChatInviteLink", chat_id=s.channel.id)
    assert revoked.params["invite_link"] == url
    assert s.channel.invite_links[url]["is_revoked"]
    await link.arefresh_from_db()
    assert link.invite_link == ""


async def test_a_missing_right_is_retried_by_the_check_up(world):
    from verification.commands import Commands

    s = world.scene
    # The bot may read members in the channel but not invite users.
    s.emulator.promote(s.channel, s.bot, by=s.alice, can_invite_users=False)
    await say(world, s.group, s.alice, "/protect @catnews")
    link = await GroupChannel.objects.aget(channel__chat_id=s.channel.id)
    assert link.invite_link == ""
    # Warnings meanwhile send people to the channel's public link.
    warning = await warn(world, s.carol)
    assert join_button_url(warning) == "https://t.me/catnews"
    # /doctor says so and what would fix it, without flagging the group for it.
    text = await say(world, s.group, s.alice, "/doctor")
    assert "ℹ️ Channel \u2068Cat News\u2069: no invite link for this group yet" in text
    assert "“Invite users” right" in text
    await Commands(world.engine).checkup()
    assert not (await ProtectedGroup.objects.aget(chat_id=s.group.id)).needs_attention
    # The right is given; the next check-up makes the link.
    s.emulator.promote(s.channel, s.bot, by=s.alice, can_invite_users=True)
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    await Commands(world.engine).checkup()
    await link.arefresh_from_db()
    assert link.invite_link.startswith("https://t.me/+")
    assert group.pk == link.group_id



async def test_a_join_request_sends_people_through_the_groups_link_too(world):
    s = world.scene
    gated = s.emulator.create_supergroup("Gated Cats", creator=s.alice, join_by_request=True)
    s.emulator.promote(gated, s.bot, by=s.alice)
    await say(world, gated, s.alice, "/protect @catnews")
    link = await GroupChannel.objects.aget(group__chat_id=gated.id)
    # Carol asks to join; the private message's Join button is the group's own link.
    s.emulator.request_join(gated, s.carol)
    message = await world.emu.wait_for_call("sendMessage", chat_id=s.carol.id)
    assert join_button_url(message) == link.invite_link
    s.emulator.join(s.channel, s.carol, invite_link=link.invite_link)
    await world.emu.wait_for_call("approveChatJoinRequest", user_id=s.carol.id)
    await world.settle()
    # Asked (warned), joined exactly through the link, approved (verified).
    journey = await Attribution.objects.aget(user_id=s.carol.id)
    assert journey.group_id == link.group_id and journey.how == "exact"
    assert journey.warned_at is not None and journey.verified_at is not None
