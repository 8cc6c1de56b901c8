"""Setting a group up from Telegram: /protect, /unprotect, /status, /settings, /help,
/doctor and /start."""

import pytest

from bots.models import AuditLog
from groups.models import GroupChannel, ProtectedGroup
from verification import commands

pytestmark = pytest.mark.django_db(transaction=True)


async def say(world, chat, user, text):
    """`user` sends `text` in `chat`; returns the bot's reply there."""
    since = len(world.emu.calls)
    world.emu.send_message(chat, user, text)
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=chat.id)
    await world.settle()
    return reply.params["text"]


async def test_protect_records_the_group_the_channel_and_who_set_it_up(world):
    s = world.scene
    text = await say(world, s.group, s.alice, "/protect @catnews")
    assert "now requires" in text and "Cat News" in text
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert group.enabled and group.setup_by_user_id == s.alice.id
    assert await GroupChannel.objects.filter(group=group, channel__chat_id=s.channel.id).aexists()
    # The change is audited, and the admin list is cached for enforcement.
    assert await AuditLog.objects.filter(action="group.protected", group_id=group.pk).aexists()
    assert world.calls("getChatAdministrators", chat_id=s.group.id)


async def test_protect_again_adds_channels_and_a_private_channel_gets_an_invite_link(world):
    s = world.scene
    private = s.emulator.create_channel("Secret Cats", creator=s.alice, username=None)
    s.emulator.promote(private, s.bot, by=s.alice)
    await say(world, s.group, s.alice, "/protect @catnews")
    await say(world, s.group, s.alice, f"/protect {private.id}")
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    channels = [link.channel async for link in
                GroupChannel.objects.filter(group=group).select_related("channel")]
    assert {c.chat_id for c in channels} == {s.channel.id, private.id}
    secret = next(c for c in channels if c.chat_id == private.id)
    assert secret.invite_link.startswith("https://t.me/")


async def test_protect_says_exactly_which_right_is_missing_where(world):
    s = world.scene
    other = s.emulator.create_channel("Dog News", creator=s.alice, username="dognews")
    text = await say(world, s.group, s.alice, "/protect @dognews")
    # The bot is not in that channel: it says so, with the fix, and records nothing.
    assert "Dog News" in text or "@dognews" in text
    assert "admin" in text
    assert not await ProtectedGroup.objects.aexists()
    s.emulator.demote(s.group, s.bot, by=s.alice)
    text = await say(world, s.group, s.alice, "/protect @catnews")
    assert "promote me" in text
    assert other.username == "dognews"


async def test_non_admins_are_refused_and_private_chats_are_pointed_to_the_group(world):
    s = world.scene
    assert "You are not an administrator of \u2068Cats\u2069" in await say(world, s.group, s.bob,
                                                               "/protect @catnews")
    since = len(world.emu.calls)
    world.emu.send_message(s.bot, s.alice, "/protect @catnews")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.alice.id)
    assert "in the group" in reply.params["text"]
    assert not await ProtectedGroup.objects.aexists()


async def test_unprotect_removes_a_channel_or_switches_off_and_lifts_restrictions(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    text = await say(world, s.group, s.alice, "/unprotect")
    assert "lifted 1" in text
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert not group.enabled
    assert s.emulator.member(s.group, s.carol).get("can_send_messages", True)
    # Settings are kept; /protect switches it back on.
    await say(world, s.group, s.alice, "/protect @catnews")
    text = await say(world, s.group, s.alice, "/unprotect @catnews")
    assert "Channel removed" in text or "off" in text


async def test_status_shows_channels_counts_and_missing_rights(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    text = await say(world, s.group, s.alice, "/status")
    assert "on" in text and "Cat News" in text and "Restricted by Nezuko: 1" in text
    assert "Owed" not in text


async def test_status_says_how_many_actions_are_owed(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    world.emu.fail("restrictChatMember", chat_id=s.group.id, error_code=502, times=None)
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id, ok=False)
    await world.settle()
    text = await say(world, s.group, s.alice, "/status")
    assert "Owed (not carried out by Telegram yet, retrying): 1" in text


async def test_settings_change_through_the_keyboard_and_are_audited(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    since = len(world.emu.calls)
    world.emu.send_message(s.group, s.alice, "/settings")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    await world.settle()
    message_id = reply.result["message_id"]
    # Bob is no admin: refused.
    query = world.emu.press_button(s.group, message_id, s.bob, "nz:s:action:kick")
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    assert world.emu.callback_answer(query)["show_alert"]
    # Alice switches to kick.
    query = world.emu.press_button(s.group, message_id, s.alice, "nz:s:action:kick")
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    await world.settle()
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert group.action == "kick"
    entry = await AuditLog.objects.aget(action="group.settings_changed")
    assert entry.after == {"action": "kick"} and entry.actor_telegram_id == s.alice.id
    # The engine sees the change at once.
    config = await world.engine.config(s.group.id)
    assert config.action == "kick"


async def test_help_start_and_doctor(world):
    s = world.scene
    assert "/protect" in await say(world, s.group, s.bob, "/help")
    since = len(world.emu.calls)
    world.emu.send_message(s.bot, s.carol, "/start")
    start = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.carol.id)
    url = start.params["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert url.startswith("https://t.me/nezuko_bot?startgroup=true&admin=")
    await say(world, s.group, s.alice, "/protect @catnews")
    text = await say(world, s.group, s.alice, "/doctor")
    assert "❌" not in text and "can restrict members" in text
    # The bot is removed from the channel: /doctor says so, with the fix.
    s.emulator.demote(s.channel, s.bot, by=s.alice)
    await world.settle()
    text = await say(world, s.group, s.alice, "/doctor")
    assert "❌" in text and "promote me to admin in the channel" in text


async def test_replies_in_groups_clean_themselves_up(world, monkeypatch):
    s = world.scene
    monkeypatch.setattr(commands, "REPLY_TTL", 0.05)
    # Bob is no admin: his answers go sooner still (test_throttle.py).
    monkeypatch.setattr(commands, "MEMBER_REPLY_TTL", 0.05)
    since = len(world.emu.calls)
    world.emu.send_message(s.group, s.bob, "/help")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    await world.emu.wait_for_call("deleteMessage", message_id=reply.result["message_id"])


async def test_doctor_notices_a_revoked_invite_link(world):
    s = world.scene
    private = s.emulator.create_channel("Secret Cats", creator=s.alice, username=None)
    s.emulator.promote(private, s.bot, by=s.alice)
    await say(world, s.group, s.alice, f"/protect {private.id}")
    assert "❌" not in await say(world, s.group, s.alice, "/doctor")
    # The owner revokes the primary link: the stored one no longer works.
    async with s.ptb_bot() as bot:
        await bot.export_chat_invite_link(private.id)
    text = await say(world, s.group, s.alice, "/doctor")
    assert "❌" in text and "revoked or replaced" in text


async def test_protect_in_a_basic_group_asks_for_a_supergroup(world):
    s = world.scene
    basic = s.emulator.create_group("Old Cats", creator=s.alice)
    s.emulator.promote(basic, s.bot, by=s.alice)
    await world.settle()
    text = await say(world, basic, s.alice, "/protect @catnews")
    assert "supergroup" in text
    assert not await ProtectedGroup.objects.aexists()


async def test_posts_as_the_groups_own_linked_channel_are_not_a_bypass_attempt(world):
    s = world.scene
    blog = s.emulator.create_channel("Cat Blog", creator=s.alice, username="catblog")
    s.emulator.link_discussion(blog, s.group)
    await say(world, s.group, s.alice, "/protect @catnews")
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert group.linked_chat_id == blog.id
    # Alice posts in the group as her blog channel: it stays.
    s.emulator.send_as_chat(s.group, sender_chat=blog, text="new post is up")
    await world.settle()
    assert not world.calls("deleteMessage")


async def test_an_admin_without_the_ban_right_may_look_but_not_change(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    # Bob may pin messages, nothing more: the same rule as on the dashboard.
    s.emulator.promote(s.group, s.bob, by=s.alice, can_pin_messages=True)
    await world.settle()
    refused = await say(world, s.group, s.bob, "/unprotect")
    assert "You need the 'Ban users' right in \u2068Cats\u2069" in refused
    assert "protection" in (await say(world, s.group, s.bob, "/status")).lower()
    # The settings keyboard shows, but pressing it changes nothing.
    since = len(world.emu.calls)
    world.emu.send_message(s.group, s.bob, "/settings")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    await world.settle()
    query = world.emu.press_button(s.group, reply.result["message_id"], s.bob, "nz:s:action:kick")
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    answer = world.emu.callback_answer(query)
    assert answer["show_alert"] and "Ban users" in answer["text"]
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert group.enabled and group.action == "mute"


async def test_an_anonymous_admin_may_look_but_not_change(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    # Posting as the group hides who speaks, so whether they hold 'Ban users' is unknown.
    since = len(world.emu.calls)
    world.emu.send_as_chat(s.group, sender_chat=s.group, text="/unprotect")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    await world.settle()
    assert "send the command as yourself" in reply.params["text"]
    assert (await ProtectedGroup.objects.aget(chat_id=s.group.id)).enabled
    since = len(world.emu.calls)
    world.emu.send_as_chat(s.group, sender_chat=s.group, text="/status")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    assert "Cat News" in reply.params["text"]


async def test_a_refusal_names_the_group_as_text_not_html(world):
    s = world.scene
    world.emu.chat(s.group).title = 'Cats <a href="https://evil.example/">log in</a>'
    text = await say(world, s.group, s.bob, "/unprotect")
    # The title arrives escaped: Telegram shows it, it does not become a link.
    assert "&lt;a href=" in text and "<a href" not in text


# --- the fourth entry point: each change a command makes goes through its service ---


async def test_unprotect_a_channel_and_switching_off_are_audited_in_the_one_vocabulary(world):
    s = world.scene
    other = s.emulator.create_channel("Dog News", creator=s.alice, username="dognews")
    s.emulator.promote(other, s.bot, by=s.alice)
    await say(world, s.group, s.alice, "/protect @catnews @dognews")
    await say(world, s.group, s.alice, "/unprotect @dognews")
    await say(world, s.group, s.alice, "/unprotect")
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    actions = [e.action async for e in AuditLog.objects.filter(group_id=group.pk)
               .order_by("pk")]
    # Switching off is disabling, named as the dashboard, the API and admin name it.
    assert actions == ["group.protected", "group.unprotected", "group.disabled"]
    entry = await AuditLog.objects.aget(action="group.disabled")
    assert (entry.source, entry.actor_telegram_id, entry.actor_name) == (
        "telegram", s.alice.id, "Alice")
    assert entry.before == {"enabled": True} and entry.after == {"enabled": False}


async def test_pressing_the_setting_already_chosen_writes_no_audit_row(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    since = len(world.emu.calls)
    world.emu.send_message(s.group, s.alice, "/settings")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    await world.settle()
    query = world.emu.press_button(s.group, reply.result["message_id"], s.alice,
                                   "nz:s:action:mute")  # already mute
    await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    await world.settle()
    assert not await AuditLog.objects.filter(action="group.settings_changed").aexists()


async def test_unmute_and_ban_from_telegram_go_through_the_member_service(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()

    # By user id: the member service queues it, the command queue carries it out.
    since = len(world.emu.calls)
    text = await say(world, s.group, s.alice, f"/unmute {s.carol.id}")
    assert "unmute" in text
    await world.emu.wait_for_call("restrictChatMember", 15, since=since, user_id=s.carol.id)
    await world.settle()
    assert s.emulator.member(s.group, s.carol).get("can_send_messages", True)
    entry = await AuditLog.objects.aget(action="member.unmuted")
    assert (entry.source, entry.actor_telegram_id, entry.after["user_id"]) == (
        "telegram", s.alice.id, s.carol.id)

    # By replying to the member's message.
    s.emulator.join(s.channel, s.bob)
    said = world.emu.send_message(s.group, s.bob, "hello")
    await world.settle()
    since = len(world.emu.calls)
    world.emu.send_message(s.group, s.alice, "/ban", reply_to=said["message_id"])
    await world.emu.wait_for_call("banChatMember", 15, since=since, user_id=s.bob.id)
    assert s.emulator.member(s.group, s.bob)["status"] == "kicked"
    entry = await AuditLog.objects.aget(action="member.banned")
    assert (entry.actor_name, entry.after["user_id"]) == ("Alice", s.bob.id)


async def test_a_member_without_the_ban_right_cannot_ban_from_telegram(world):
    s = world.scene
    await say(world, s.group, s.alice, "/protect @catnews")
    s.emulator.join(s.channel, s.bob)  # subscribed, so he may speak, but is no admin
    text = await say(world, s.group, s.bob, f"/ban {s.carol.id}")
    assert "not an administrator" in text
    assert not await AuditLog.objects.filter(action="member.banned").aexists()
