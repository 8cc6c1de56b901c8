"""The production Application factory runs unchanged against the emulator."""

from __future__ import annotations

from telegram import ChatPermissions, Update
from telegram.ext import ChatMemberHandler, ContextTypes, MessageHandler, filters

from bots.application import build_application
from bots.testing import Scene

ALLOWED = ["message", "callback_query", "chat_member", "my_chat_member", "chat_join_request"]


async def mute_sender(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    await context.bot.restrict_chat_member(
        message.chat_id, message.from_user.id, ChatPermissions.no_permissions()
    )
    await message.delete()


async def greet_joiner(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    change = update.chat_member
    if change.difference().get("status") == ("left", "member"):
        await context.bot.send_message(
            change.chat.id, f"Welcome {change.new_chat_member.user.first_name}"
        )


async def test_a_polling_application_reacts_to_people(scene: Scene) -> None:
    emu = scene.emulator
    app = build_application(scene.bot.token, api_url=emu.api_url)
    app.add_handler(MessageHandler(filters.TEXT & filters.ChatType.GROUPS, mute_sender))
    app.add_handler(ChatMemberHandler(greet_joiner, ChatMemberHandler.CHAT_MEMBER))
    async with app:
        await app.updater.start_polling(allowed_updates=ALLOWED, drop_pending_updates=True)
        await app.start()
        try:
            await emu.wait_for_poll(scene.bot)
            spam = emu.send_message(scene.group, scene.bob, "buy now")
            restricted = await emu.wait_for_call("restrictChatMember", user_id=scene.bob.id)
            await emu.wait_for_call("deleteMessage", message_id=spam["message_id"])
            emu.join(scene.group, scene.carol)
            welcome = await emu.wait_for_call("sendMessage", chat_id=scene.group.id)
        finally:
            await app.updater.stop()
            await app.stop()
    # The bot muted bob and removed his message, then greeted carol.
    assert restricted.ok and emu.member(scene.group, scene.bob)["status"] == "restricted"
    assert spam["message_id"] not in {m["message_id"] for m in emu.messages(scene.group)}
    assert welcome.result["text"] == "Welcome Carol"
