"""Every Bot API method the emulator serves answers in shapes python-telegram-bot parses."""

from __future__ import annotations

import datetime as dt

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    ChatFullInfo,
    ChatInviteLink,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberRestricted,
    ChatPermissions,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    User,
    WebhookInfo,
)

from bots.testing import Scene

KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("I've joined", callback_data="joined")]])


async def test_get_me_describes_the_bot(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        me = await bot.get_me()
    # It should be the bot's own User, privacy mode off.
    assert isinstance(me, User)
    assert (me.id, me.username, me.is_bot) == (scene.bot.id, "nezuko_bot", True)
    assert me.can_read_all_group_messages is True


async def test_send_edit_and_delete_a_message(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        sent = await bot.send_message(
            scene.group.id, "Hello <b>Carol</b> &amp; co", parse_mode="HTML", reply_markup=KEYBOARD
        )
        edited = await bot.edit_message_text(
            "Bye", chat_id=scene.group.id, message_id=sent.message_id
        )
        marked = await bot.edit_message_reply_markup(
            scene.group.id, sent.message_id, reply_markup=KEYBOARD
        )
        # HTML parse mode turns tags into entities, as Telegram does.
        assert isinstance(sent, Message)
        assert sent.text == "Hello Carol & co"
        assert sent.entities[0].type == "bold" and sent.parse_entity(sent.entities[0]) == "Carol"
        assert sent.reply_markup == KEYBOARD
        assert edited.text == "Bye" and edited.edit_date is not None
        assert marked.reply_markup == KEYBOARD
        # It should be in the chat until deleted.
        assert scene.emulator.messages(scene.group)[-1]["text"] == "Bye"
        assert await bot.delete_message(scene.group.id, sent.message_id) is True
        assert sent.message_id not in {
            m["message_id"] for m in scene.emulator.messages(scene.group)
        }


async def test_delete_messages_skips_unknown_ids(scene: Scene) -> None:
    first = scene.emulator.send_message(scene.group, scene.bob, "one")
    second = scene.emulator.send_message(scene.group, scene.bob, "two")
    async with scene.ptb_bot() as bot:
        done = await bot.delete_messages(
            scene.group.id, [first["message_id"], second["message_id"], 9999]
        )
    assert done is True
    assert all(
        m["text"] not in ("one", "two") for m in scene.emulator.messages(scene.group) if "text" in m
    )


async def test_reply_and_topic_messages(emulator) -> None:
    from bots.testing import make_scene

    scene = make_scene(emulator, is_forum=True)
    topic = emulator.create_topic(scene.group, "Rules", by=scene.alice)
    question = emulator.send_message(scene.group, scene.bob, "rules?", message_thread_id=topic)
    async with scene.ptb_bot() as bot:
        answer = await bot.send_message(
            scene.group.id,
            "read them",
            message_thread_id=topic,
            reply_to_message_id=question["message_id"],
        )
    assert answer.message_thread_id == topic and answer.is_topic_message
    assert answer.reply_to_message.text == "rules?"


async def test_get_chat_returns_full_info(scene: Scene) -> None:
    emu = scene.emulator
    emu.link_discussion(scene.channel, scene.group)
    async with scene.ptb_bot() as bot:
        group = await bot.get_chat(scene.group.id)
        channel = await bot.get_chat("@catnews")
    assert isinstance(group, ChatFullInfo)
    assert group.type == "supergroup" and group.title == "Cats"
    assert isinstance(group.permissions, ChatPermissions) and group.permissions.can_send_messages
    assert group.linked_chat_id == scene.channel.id
    assert channel.id == scene.channel.id and channel.username == "catnews"


async def test_member_lookups_parse_into_each_status(scene: Scene) -> None:
    emu = scene.emulator
    dave = emu.create_user("Dave")
    async with scene.ptb_bot() as bot:
        owner = await bot.get_chat_member(scene.group.id, scene.alice.id)
        me = await bot.get_chat_member(scene.group.id, scene.bot.id)
        member = await bot.get_chat_member(scene.group.id, scene.bob.id)
        left = await bot.get_chat_member(scene.group.id, scene.carol.id)
        await bot.restrict_chat_member(
            scene.group.id, scene.bob.id, ChatPermissions.no_permissions()
        )
        restricted = await bot.get_chat_member(scene.group.id, scene.bob.id)
        emu.join(scene.group, dave)
        await bot.ban_chat_member(scene.group.id, dave.id)
        banned = await bot.get_chat_member(scene.group.id, dave.id)
        admins = await bot.get_chat_administrators(scene.group.id)
        count = await bot.get_chat_member_count(scene.group.id)
    assert isinstance(owner, ChatMemberOwner)
    assert isinstance(me, ChatMemberAdministrator) and me.can_restrict_members
    assert isinstance(member, ChatMemberMember)
    assert isinstance(left, ChatMemberLeft)
    assert isinstance(restricted, ChatMemberRestricted)
    assert restricted.is_member and not restricted.can_send_messages
    assert isinstance(banned, ChatMemberBanned)
    assert [a.user.id for a in admins] == [scene.alice.id, scene.bot.id]
    # alice, the bot and bob (restricted but still in the chat)
    assert count == 3


async def test_restricting_with_every_permission_makes_a_plain_member_again(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        until = dt.datetime.now(tz=dt.UTC) + dt.timedelta(hours=1)
        await bot.restrict_chat_member(
            scene.group.id, scene.bob.id, ChatPermissions.no_permissions(), until_date=until
        )
        timed = await bot.get_chat_member(scene.group.id, scene.bob.id)
        await bot.restrict_chat_member(
            scene.group.id, scene.bob.id, ChatPermissions.all_permissions()
        )
        freed = await bot.get_chat_member(scene.group.id, scene.bob.id)
    assert isinstance(timed, ChatMemberRestricted)
    assert int(timed.until_date.timestamp()) == int(until.timestamp())
    assert isinstance(freed, ChatMemberMember)


async def test_unban_lets_a_banned_user_join_again(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        await bot.ban_chat_member(scene.group.id, scene.bob.id)
        assert await bot.unban_chat_member(scene.group.id, scene.bob.id, only_if_banned=True)
        after = await bot.get_chat_member(scene.group.id, scene.bob.id)
    assert isinstance(after, ChatMemberLeft)
    scene.emulator.join(scene.group, scene.bob)
    assert scene.emulator.member(scene.group, scene.bob)["status"] == "member"


async def test_invite_links(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        link = await bot.create_chat_invite_link(scene.group.id, name="promo", member_limit=5)
        primary = await bot.export_chat_invite_link(scene.group.id)
        full = await bot.get_chat(scene.group.id)
    assert isinstance(link, ChatInviteLink)
    assert link.name == "promo" and link.member_limit == 5 and link.creator.id == scene.bot.id
    assert primary.startswith("https://t.me/+") and full.invite_link == primary


async def test_join_requests_are_approved_and_declined(scene: Scene) -> None:
    emu = scene.emulator
    scene.group.join_by_request = True
    dave = emu.create_user("Dave")
    emu.request_join(scene.group, scene.carol)
    emu.request_join(scene.group, dave)
    async with scene.ptb_bot() as bot:
        # The bot may write first to someone who asked to join.
        note = await bot.send_message(scene.carol.id, "Join @catnews first")
        assert await bot.approve_chat_join_request(scene.group.id, scene.carol.id)
        assert await bot.decline_chat_join_request(scene.group.id, dave.id)
    assert note.chat.id == scene.carol.id and note.chat.type == "private"
    assert emu.member(scene.group, scene.carol)["status"] == "member"
    assert emu.member(scene.group, dave)["status"] == "left"


async def test_callback_queries_are_answered_once(scene: Scene) -> None:
    emu = scene.emulator
    async with scene.ptb_bot() as bot:
        sent = await bot.send_message(scene.group.id, "warn", reply_markup=KEYBOARD)
        query_id = emu.press_button(scene.group, sent.message_id, scene.bob, "joined")
        assert await bot.answer_callback_query(query_id, "Still missing @catnews", show_alert=True)
    assert emu.callback_answer(query_id) == {
        "text": "Still missing @catnews",
        "show_alert": True,
        "url": None,
    }


async def test_commands_are_kept_per_scope(scene: Scene) -> None:
    commands = [BotCommand("protect", "Protect this group"), BotCommand("status", "Show status")]
    scope = BotCommandScopeAllGroupChats()
    async with scene.ptb_bot() as bot:
        assert await bot.set_my_commands(commands, scope=scope)
        in_groups = await bot.get_my_commands(scope=scope)
        default = await bot.get_my_commands()
        assert await bot.delete_my_commands(scope=scope)
        after = await bot.get_my_commands(scope=scope)
    assert tuple(in_groups) == tuple(commands)
    assert default == () and after == ()


async def test_webhook_info_reflects_set_and_delete(scene: Scene) -> None:
    async with scene.ptb_bot() as bot:
        info = await bot.get_webhook_info()
        assert isinstance(info, WebhookInfo) and info.url == ""
        await bot.set_webhook("http://127.0.0.1:9/hook", allowed_updates=["message"])
        info = await bot.get_webhook_info()
        assert info.url == "http://127.0.0.1:9/hook"
        assert info.allowed_updates == ("message",)
        await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""


async def test_chat_permissions_links_and_leaving(scene: Scene) -> None:
    emu = scene.emulator
    async with scene.ptb_bot() as bot:
        assert await bot.set_chat_permissions(
            scene.group.id,
            ChatPermissions(can_send_messages=True),
            use_independent_chat_permissions=True,
        )
        link = await bot.create_chat_invite_link(scene.group.id)
        revoked = await bot.revoke_chat_invite_link(scene.group.id, link.invite_link)
        defaults = (await bot.get_chat(scene.group.id)).permissions
        assert await bot.leave_chat(scene.group.id)
    # New defaults apply, the link is dead, and the bot is out.
    assert defaults.can_send_messages and not defaults.can_send_photos
    assert revoked.is_revoked
    assert emu.member(scene.group, scene.bot)["status"] == "left"
