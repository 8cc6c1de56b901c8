"""Flow 1: a message in a protected group, end to end against the emulator."""

import pytest
from asgiref.sync import sync_to_async

from groups.models import GroupMember
from verification.membership import memberships
from verification.models import VerificationEvent
from verification.updates import callback_data

pytestmark = pytest.mark.django_db(transaction=True)


def buttons(call) -> list[dict]:
    return [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]


async def test_it_deletes_restricts_and_warns_a_non_subscriber_once(world):
    s = world.scene
    # Carol was in the group before it was protected.
    s.emulator.join(s.group, s.carol)
    await world.settle()
    await world.protect()
    first = s.emulator.send_message(s.group, s.carol, "hello")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    # It should delete the message and mute carol.
    assert world.calls("deleteMessage", chat_id=s.group.id, message_id=first["message_id"])
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"
    assert not s.emulator.member(s.group, s.carol)["can_send_messages"]
    # It should post one warning: a Join button per missing channel, "I've joined" for carol.
    (warning,) = world.calls("sendMessage", chat_id=s.group.id)
    assert buttons(warning) == [
        {"text": "Join \u2068Cat News\u2069", "url": "https://t.me/catnews"},
        {"text": "I've joined", "callback_data": callback_data("joined", s.carol.id)},
    ]
    assert "Carol" in warning.params["text"]
    # The ledger says Nezuko restricted her, and why.
    member = await GroupMember.objects.aget(user_id=s.carol.id)
    assert member.restricted_by_nezuko and member.restriction_reason == "message"
    # And the event is recorded.
    await world.recorder.aflush()
    assert await VerificationEvent.objects.filter(user_id=s.carol.id,
                                                  outcome="restricted").acount() == 1


async def test_it_names_only_the_channels_still_missing(world):
    s = world.scene
    pics = s.emulator.create_channel("Cat Pics", creator=s.alice, username=None)
    s.emulator.promote(pics, s.bot, by=s.alice)
    s.emulator.join(s.group, s.carol)
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    await world.protect(channels=[s.channel, pics])
    s.emulator.send_message(s.group, s.carol, "hi")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    (warning,) = world.calls("sendMessage", chat_id=s.group.id)
    # A private channel is joined by its invite link.
    assert buttons(warning)[0] == {"text": "Join \u2068Cat Pics\u2069",
                                   "url": f"https://t.me/+invite{abs(pics.id)}"}
    assert len(buttons(warning)) == 2


async def test_a_thousand_messages_from_a_subscriber_cost_no_telegram_call(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.channel, s.bob)
    await world.settle()
    # Forget what the channel event taught us, so the first message must check.
    memberships.clear_local()
    await sync_to_async(memberships.forget)((s.bot.id, s.channel.id, s.bob.id))
    s.emulator.send_message(s.group, s.bob, "first")
    await world.settle()
    assert len(world.calls("getChatMember", user_id=s.bob.id)) == 1
    before = len(world.emu.calls)
    for i in range(1000):
        s.emulator.send_message(s.group, s.bob, f"message {i}")
    await world.settle()
    # The only calls after the first check are the probe's getUpdates and /help answer.
    later = [c.method for c in world.emu.calls[before:] if c.method != "getUpdates"]
    assert later == ["sendMessage"]
    assert world.calls("getChatMember", user_id=s.bob.id).__len__() == 1


async def test_it_never_restricts_admins_bots_or_allow_listed_users(world):
    s = world.scene
    helper = s.emulator.create_bot(username="helper_bot")
    await world.protect(allowed_user_ids=[s.bob.id])
    s.emulator.add_bot(s.group, helper, by=s.alice)
    s.emulator.send_message(s.group, s.alice, "I own this place")
    s.emulator.send_message(s.group, s.bob, "I am on the allow-list")
    await world.settle()
    # Nobody is checked or restricted.
    assert not world.calls("restrictChatMember")
    assert not world.calls("getChatMember", user_id=s.alice.id)


async def test_an_admin_missing_from_the_cached_list_is_never_muted(world):
    s = world.scene
    # The cached admin list is stale: it does not know that alice promoted carol.
    await world.protect(admins=[s.alice])
    from groups.models import ProtectedGroup

    await ProtectedGroup.objects.all().aupdate(admins_refreshed_at=None)
    s.emulator.join(s.group, s.carol)
    s.emulator.promote(s.group, s.carol, by=s.alice)
    s.emulator.send_message(s.group, s.carol, "new admin here")
    await world.settle()
    # It should refresh the admin list instead of restricting her.
    assert world.calls("getChatAdministrators", chat_id=s.group.id)
    assert not world.calls("restrictChatMember", user_id=s.carol.id)


async def test_anonymous_admins_and_the_linked_channels_forwards_pass(world):
    s = world.scene
    await world.protect()
    s.emulator.link_discussion(s.channel, s.group)
    s.emulator.send_as_chat(s.group, sender_chat=s.group, text="anonymous admin")
    s.emulator.auto_forward(s.channel, "a channel post")
    await world.settle()
    assert not world.calls("deleteMessage")
    assert not world.calls("restrictChatMember")


async def test_posting_as_ones_own_channel_is_no_bypass(world):
    s = world.scene
    own = s.emulator.create_channel("Carol's Corner", creator=s.carol, username="carolcorner")
    s.emulator.join(s.group, s.carol)
    await world.settle()
    await world.protect()
    msg = s.emulator.send_as_chat(s.group, sender_chat=own, text="buy my stuff")
    await world.emu.wait_for_call("deleteMessage", message_id=msg["message_id"])
    await world.settle()
    # It should delete the post and say why, once.
    notices = world.calls("sendMessage", chat_id=s.group.id)
    assert len(notices) == 1 and "as a channel" in notices[0].params["text"]


async def test_in_a_forum_the_warning_goes_to_the_topic_of_the_message(world):
    s = world.scene
    forum = s.emulator.create_supergroup("Cat Forum", creator=s.alice, is_forum=True)
    s.emulator.promote(forum, s.bot, by=s.alice)
    topic = s.emulator.create_topic(forum, "Kittens", by=s.alice)
    s.emulator.join(forum, s.carol)
    await world.settle()
    await world.protect(group=forum, is_forum=True)
    s.emulator.send_message(forum, s.carol, "meow", message_thread_id=topic)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    (warning,) = world.calls("sendMessage", chat_id=forum.id)
    assert int(warning.params["message_thread_id"]) == topic


async def test_unprotected_groups_cost_nothing(world):
    s = world.scene
    s.emulator.join(s.group, s.carol)
    s.emulator.send_message(s.group, s.carol, "no rules here")
    await world.settle()
    assert not world.calls("getChatMember")
    assert not world.calls("restrictChatMember")
