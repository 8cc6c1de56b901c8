"""Which bot hears about what, and how: the update rules Nezuko's engine relies on."""

from __future__ import annotations

import asyncio

import pytest
from telegram import Bot, ChatMemberUpdated, Update
from telegram.error import Conflict

from bots.emulator import TelegramEmulator
from bots.testing import Scene, make_scene

EVERYTHING = [
    "message",
    "edited_message",
    "channel_post",
    "callback_query",
    "chat_member",
    "my_chat_member",
    "chat_join_request",
]


async def drain(bot: Bot, allowed: list[str] | None = EVERYTHING) -> list[Update]:
    """Every pending update, confirmed so the next call starts fresh."""
    updates = await bot.get_updates(timeout=0, allowed_updates=allowed)
    if updates:
        await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    return list(updates)


def kinds(updates: list[Update]) -> list[str]:
    return [next(k for k in u.to_dict() if k != "update_id") for u in updates]


async def test_long_polling_returns_as_soon_as_an_update_arrives(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        await drain(bot)
        poll = asyncio.create_task(bot.get_updates(timeout=30, allowed_updates=EVERYTHING))
        await scene.emulator.wait_for_poll(scene.bot)
        scene.emulator.send_message(scene.group, scene.bob, "hello")
        # It should answer with the new message long before its 30 s timeout.
        updates = await asyncio.wait_for(poll, 5)
    assert [u.message.text for u in updates] == ["hello"]


async def test_updates_stay_until_a_later_offset_confirms_them(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        await drain(bot)
        scene.emulator.send_message(scene.group, scene.bob, "one")
        scene.emulator.send_message(scene.group, scene.bob, "two")
        first = await bot.get_updates(limit=1, allowed_updates=EVERYTHING)
        again = await bot.get_updates(allowed_updates=EVERYTHING)
        rest = await bot.get_updates(offset=first[0].update_id + 1)
    assert [u.message.text for u in first] == ["one"]
    # Unconfirmed updates come back; update_id increases by one per update.
    assert [u.message.text for u in again] == ["one", "two"]
    assert [u.message.text for u in rest] == ["two"]
    assert rest[0].update_id == first[0].update_id + 1


async def test_a_join_sends_a_service_message_and_chat_member_to_an_admin_bot(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        await drain(bot)
        scene.emulator.join(scene.group, scene.carol)
        updates = await drain(bot)
    assert sorted(kinds(updates)) == ["chat_member", "message"]
    change = next(u.chat_member for u in updates if u.chat_member)
    assert isinstance(change, ChatMemberUpdated)
    assert change.difference()["status"] == ("left", "member")
    message = next(u.message for u in updates if u.message)
    assert [m.id for m in message.new_chat_members] == [scene.carol.id]


async def test_chat_member_updates_need_admin_rights_and_asking_for_them(
    emulator: TelegramEmulator,
) -> None:
    scene = make_scene(emulator)
    plain = emulator.create_bot(username="plain_bot")
    emulator.add_bot(scene.group, plain, by=scene.alice)
    async with scene.ptb_bot() as admin_bot, scene.ptb_bot(plain) as plain_bot:
        await drain(admin_bot, allowed=None)
        await drain(plain_bot)
        emulator.join(scene.group, scene.carol)
        # Without asking (Telegram's default) even an admin bot gets no chat_member.
        not_asked = await drain(admin_bot, allowed=None)
        plain_updates = await drain(plain_bot)
    assert kinds(not_asked) == ["message"]
    # A bot that is not an admin gets the service message only.
    assert kinds(plain_updates) == ["message"]


async def test_a_channel_join_sends_only_chat_member(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        await drain(bot)
        scene.emulator.join(scene.channel, scene.carol)
        scene.emulator.leave(scene.channel, scene.carol)
        updates = await drain(bot)
    assert kinds(updates) == ["chat_member", "chat_member"]
    assert [u.chat_member.new_chat_member.status for u in updates] == ["member", "left"]


async def test_each_bot_gets_its_own_copy_with_its_own_update_ids(
    emulator: TelegramEmulator,
) -> None:
    scene = make_scene(emulator)
    other = emulator.create_bot(username="other_bot")
    emulator.promote(scene.group, other, by=scene.alice)
    async with scene.ptb_bot() as first, scene.ptb_bot(other) as second:
        await drain(first)
        await drain(second)
        emulator.send_message(scene.group, scene.bob, "hi both")
        mine, theirs = await drain(first), await drain(second)
        # A bot's own message reaches no bot.
        await first.send_message(scene.group.id, "bots never see bots")
        silent = await drain(second)
    assert [u.message.text for u in mine] == [u.message.text for u in theirs] == ["hi both"]
    assert silent == []


async def test_promotion_and_demotion_reach_the_bot_as_my_chat_member(
    emulator: TelegramEmulator,
) -> None:
    alice = emulator.create_user("Alice")
    group = emulator.create_supergroup("Dogs", creator=alice)
    bot_user = emulator.create_bot(username="dog_bot")
    async with Bot(bot_user.token, base_url=f"{emulator.api_url}/bot") as bot:
        emulator.add_bot(group, bot_user, by=alice)
        emulator.promote(group, bot_user, by=alice, can_restrict_members=True)
        emulator.demote(group, bot_user, by=alice)
        updates = await drain(bot)
    changes = [u.my_chat_member.difference().get("status") for u in updates if u.my_chat_member]
    assert changes == [("left", "member"), ("member", "administrator"), ("administrator", "member")]
    # The bot also sees the service message that announces it.
    assert any(u.message and u.message.new_chat_members for u in updates)


async def test_my_chat_member_is_filtered_by_allowed_updates_like_the_rest(
    emulator: TelegramEmulator,
) -> None:
    alice = emulator.create_user("Alice")
    group = emulator.create_supergroup("Dogs", creator=alice)
    bot_user = emulator.create_bot(username="dog_bot")
    async with Bot(bot_user.token, base_url=f"{emulator.api_url}/bot") as bot:
        await bot.get_updates(timeout=0, allowed_updates=["message"])
        emulator.add_bot(group, bot_user, by=alice)
        # Asking for my_chat_member later does not bring back what was filtered out.
        updates = await drain(bot, allowed=["message", "my_chat_member"])
    assert kinds(updates) == ["message"]


async def test_button_presses_and_join_requests_reach_the_bot(scene: Scene) -> None:
    emu = scene.emulator
    scene.group.join_by_request = True
    async with scene.ptb_bot() as bot:
        await drain(bot)
        sent = await bot.send_message(
            scene.group.id,
            "warning",
            reply_markup={"inline_keyboard": [[{"text": "ok", "callback_data": "ok:1"}]]},
        )
        query_id = emu.press_button(scene.group, sent.message_id, scene.bob, "ok:1")
        emu.request_join(scene.group, scene.carol)
        updates = await drain(bot)
    assert kinds(updates) == ["callback_query", "chat_join_request"]
    query, request = updates[0].callback_query, updates[1].chat_join_request
    assert query.id == query_id and query.data == "ok:1" and query.from_user.id == scene.bob.id
    assert query.message.message_id == sent.message_id
    assert request.from_user.id == scene.carol.id and request.user_chat_id == scene.carol.id


async def test_anonymous_admins_and_automatic_forwards_look_like_telegrams(scene: Scene) -> None:
    emu = scene.emulator
    emu.link_discussion(scene.channel, scene.group)
    async with scene.ptb_bot() as bot:
        await drain(bot)
        emu.send_as_chat(scene.group, sender_chat=scene.group, text="from the admins")
        emu.auto_forward(scene.channel, "new post")
        updates = await drain(bot)
    assert kinds(updates) == ["message", "channel_post", "message"]
    anonymous, post, forward = (u.effective_message for u in updates)
    assert anonymous.sender_chat.id == scene.group.id
    assert anonymous.from_user.username == "GroupAnonymousBot"
    assert post.chat.id == scene.channel.id
    assert forward.is_automatic_forward and forward.sender_chat.id == scene.channel.id
    assert forward.forward_origin.chat.id == scene.channel.id


async def test_a_second_poller_ends_the_first_with_a_conflict(scene: Scene) -> None:
    async with scene.ptb_bot() as first, scene.ptb_bot() as second:
        await drain(first)
        waiting = asyncio.create_task(first.get_updates(timeout=30))
        await scene.emulator.wait_for_poll(scene.bot)
        await second.get_updates(timeout=0)
        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await asyncio.wait_for(waiting, 5)


async def test_media_messages_carry_their_caption(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        await drain(bot)
        scene.emulator.send_message(scene.group, scene.bob, "look", media="photo")
        [update] = await drain(bot)
    assert update.message.photo and update.message.caption == "look"


async def test_stopping_answers_a_parked_poll_at_once(emulator: TelegramEmulator) -> None:
    bot_user = emulator.create_bot()
    async with Bot(bot_user.token, base_url=f"{emulator.api_url}/bot") as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await emulator.wait_for_poll(bot_user)
        await emulator.stop()
        # It should answer (empty) instead of holding shutdown for 30 s.
        assert await asyncio.wait_for(poll, 5) == ()


async def test_buttons_under_a_channel_post_reach_the_bot_that_posted(scene: Scene) -> None:
    emu = scene.emulator
    async with scene.ptb_bot() as bot:
        post = await bot.send_message(
            scene.channel.id,
            "news",
            reply_markup={"inline_keyboard": [[{"text": "like", "callback_data": "like"}]]},
        )
        await drain(bot)
        emu.press_button(scene.channel, post.message_id, scene.bob, "like")
        [update] = await drain(bot)
    # Channel posts carry the channel as sender, not the bot.
    assert post.from_user is None and post.sender_chat.id == scene.channel.id
    assert update.callback_query.data == "like"


async def test_invite_links_admit_or_ask(scene: Scene) -> None:
    emu = scene.emulator
    dave = emu.create_user("Dave")
    async with scene.ptb_bot() as bot:
        await drain(bot)
        direct = await bot.create_chat_invite_link(scene.group.id)
        gated = await bot.create_chat_invite_link(scene.group.id, creates_join_request=True)
        emu.join(scene.group, scene.carol, invite_link=direct.invite_link)
        emu.request_join(scene.group, dave, invite_link=gated.invite_link)
        updates = await drain(bot)
    joined = next(u.chat_member for u in updates if u.chat_member)
    request = next(u.chat_join_request for u in updates if u.chat_join_request)
    assert joined.invite_link.invite_link == direct.invite_link
    assert request.invite_link.invite_link == gated.invite_link


async def test_a_join_through_another_admins_link_shows_the_link_cut_short(scene: Scene) -> None:
    emu = scene.emulator
    other = emu.create_bot(username="other_bot")
    emu.promote(scene.channel, other, by=scene.alice)
    async with scene.ptb_bot() as bot, scene.ptb_bot(other) as other_bot:
        await drain(bot)
        await drain(other_bot)
        mine = await bot.create_chat_invite_link(scene.channel.id, name="Nezuko: Cats")
        emu.join(scene.channel, scene.carol, invite_link=mine.invite_link)
        seen_by_creator = next(u.chat_member for u in await drain(bot) if u.chat_member)
        seen_by_other = next(u.chat_member for u in await drain(other_bot) if u.chat_member)
    # The creator sees its own link in full, with its name; another admin only its start.
    assert seen_by_creator.invite_link.invite_link == mine.invite_link
    assert seen_by_creator.invite_link.name == "Nezuko: Cats"
    shown = seen_by_other.invite_link.invite_link
    assert shown.endswith("…") and shown != mine.invite_link
    assert mine.invite_link.startswith(shown[:-1])


async def test_a_block_and_an_unblock_reach_the_bot_as_my_chat_member_in_private(
        scene: Scene) -> None:
    emu = scene.emulator
    async with scene.ptb_bot() as bot:
        emu.send_message(scene.bot, scene.carol, "/start")
        await drain(bot)
        emu.block(scene.carol, scene.bot)
        [blocked] = await drain(bot)
        emu.unblock(scene.carol, scene.bot)
        [unblocked] = await drain(bot)
        # Blocked while nobody listened: no update, only the 403 later.
        emu.block(scene.carol, scene.bot, tell_bot=False)
        assert await drain(bot) == []
        # Writing to the bot unblocks it first, as Telegram's app does.
        emu.send_message(scene.bot, scene.carol, "/start")
        updates = await drain(bot)
    for update, old, new in ((blocked, "member", "kicked"), (unblocked, "kicked", "member")):
        cmu = update.my_chat_member
        assert (cmu.chat.type, cmu.chat.id, cmu.from_user.id) == ("private", scene.carol.id,
                                                                   scene.carol.id)
        assert (cmu.old_chat_member.status, cmu.new_chat_member.status) == (old, new)
        assert cmu.new_chat_member.user.id == scene.bot.id
    assert kinds(updates) == ["my_chat_member", "message"]
