"""The Bot API's request side: method registry, typed parameters, and access rules.

python-telegram-bot posts form fields where strings arrive raw and everything
else JSON-encoded, so a parameter's type comes from its name, as on Telegram's
side. The access helpers answer with Telegram's exact error texts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bots.emulator.errors import CHAT_NOT_FOUND, ApiError, bad_request, forbidden
from bots.emulator.state import Chat, Member, User

if TYPE_CHECKING:
    from bots.emulator.emulator import TelegramEmulator

Params = dict[str, Any]
Handler = Callable[["TelegramEmulator", User, Params], Any]
AsyncHandler = Callable[["TelegramEmulator", User, Params], Awaitable[Any]]

# Lower-case method name -> (Telegram's spelling, handler, is it async).
METHODS: dict[str, tuple[str, Handler | AsyncHandler, bool]] = {}

INT_PARAMS = frozenset(
    {
        "user_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "until_date",
        "message_thread_id",
        "cache_time",
        "max_connections",
        "member_limit",
        "expire_date",
        "reply_to_message_id",
        "from_chat_id",
    }
)
JSON_PARAMS = frozenset(
    {
        "permissions",
        "reply_markup",
        "allowed_updates",
        "message_ids",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "reply_parameters",
        "link_preview_options",
    }
)
BOOL_PARAMS = frozenset(
    {
        "show_alert",
        "drop_pending_updates",
        "only_if_banned",
        "revoke_messages",
        "use_independent_chat_permissions",
        "disable_notification",
        "protect_content",
        "creates_join_request",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "is_anonymous",
        "allow_paid_broadcast",
    }
)
SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def method(name: str, *, is_async: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = (name, handler, is_async)
        return handler

    return register


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0", ""):
        return False
    raise bad_request(f"invalid {name} specified")


def coerce(raw: dict[str, Any], *, from_form: bool) -> Params:
    """Typed parameters from a form or JSON body; bad values answer 400 like Telegram."""
    params: Params = {}
    for name, value in raw.items():
        if name == "chat_id":
            params[name] = _chat_id(value)
        elif name in INT_PARAMS:
            try:
                params[name] = int(value)
            except (TypeError, ValueError):
                raise bad_request(f"invalid {name} specified") from None
        elif name in BOOL_PARAMS or name.startswith("can_"):
            params[name] = _to_bool(name, value)
        elif name in JSON_PARAMS and from_form and isinstance(value, str):
            try:
                params[name] = json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
        else:
            params[name] = value
    return params


def _chat_id(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        if text.startswith("@") and len(text) > 1:
            return text
        raise bad_request(CHAT_NOT_FOUND) from None


def need(params: Params, name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise bad_request(f"{name} is empty" if name != "text" else "message text is empty")
    return value


# --- finding chats and users the way a bot may see them ----------------------------------


def find_chat(emu: TelegramEmulator, bot: User, chat_id: int | str) -> Chat:
    """The chat a bot names, or 400 "chat not found" (private chats only with this bot)."""
    chat: Chat | None
    if isinstance(chat_id, str):
        found = emu.usernames.get(chat_id.lower().lstrip("@"))
        chat = found if isinstance(found, Chat) else None
    elif chat_id > 0:
        chat = emu.private_chats.get((bot.id, chat_id))
        if chat is None and chat_id in emu.users:
            chat = _requester_chat(emu, bot, emu.users[chat_id])
    else:
        chat = emu.chats.get(chat_id)
    if chat is None:
        raise bad_request(CHAT_NOT_FOUND)
    if chat.migrated_to is not None:
        raise ApiError(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            migrate_to_chat_id=chat.migrated_to,
        )
    return chat


def _requester_chat(emu: TelegramEmulator, bot: User, user: User) -> Chat | None:
    """A bot may write first to a user who asked to join a chat the bot administers."""
    for chat in emu.chats.values():
        if user.id in chat.join_requests and chat.member(bot).has_right("can_invite_users"):
            return emu.private_chat(bot, user)
    return None


def visible_chat(emu: TelegramEmulator, bot: User, chat_id: int | str) -> tuple[Chat, Member]:
    """A chat the bot can read: it is in it, or the chat is public."""
    chat = find_chat(emu, bot, chat_id)
    me = chat.member(bot)
    if chat.type == "private":
        return chat, me
    if me.status == "kicked":
        raise forbidden(f"bot was kicked from the {chat.type} chat")
    if not me.in_chat and not chat.username:
        raise bad_request(CHAT_NOT_FOUND)
    return chat, me


def member_list_chat(emu: TelegramEmulator, bot: User, chat_id: int | str) -> tuple[Chat, Member]:
    """A chat whose members the bot may look up: in a channel only admins may."""
    chat, me = visible_chat(emu, bot, chat_id)
    if chat.type == "channel" and not me.is_admin:
        raise bad_request("member list is inaccessible")
    return chat, me


def sendable_chat(emu: TelegramEmulator, bot: User, chat_id: int | str) -> Chat:
    """A chat the bot may post a message in, or Telegram's 400/403."""
    if isinstance(chat_id, int) and chat_id > 0 and chat_id in emu.users:
        peer = emu.users[chat_id]
        if peer.is_bot:
            raise forbidden("bot can't send messages to bots")
        if (bot.id, peer.id) in emu.blocked:
            raise forbidden("bot was blocked by the user")
        try:
            return find_chat(emu, bot, chat_id)
        except ApiError:
            raise forbidden("bot can't initiate conversation with a user") from None
    chat = find_chat(emu, bot, chat_id)
    me = chat.member(bot)
    if me.status == "kicked":
        raise forbidden(f"bot was kicked from the {chat.type} chat")
    if not me.in_chat:
        raise forbidden(f"bot is not a member of the {chat.type} chat")
    if chat.type == "channel":
        if not me.has_right("can_post_messages"):
            raise bad_request("need administrator rights in the channel chat")
    elif not me.is_admin:
        perms = me.permissions if me.status == "restricted" else chat.permissions
        if not perms.get("can_send_messages") or not chat.permissions.get("can_send_messages"):
            raise bad_request("not enough rights to send text messages to the chat")
    return chat


def target_user(emu: TelegramEmulator, params: Params) -> User:
    user = emu.users.get(need(params, "user_id"))
    if user is None:
        raise bad_request("user not found")
    return user
