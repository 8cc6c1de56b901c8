"""The emulator's world: who exists, which chats, and who is told about each change.

`TelegramWorld` owns the registries and the fan-out rules (which bot gets which update);
`People` (people.py) acts on it as users, the `api_*.py` modules as bots.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable
from typing import Any

from bots.emulator.errors import EmulatorError
from bots.emulator.state import (
    ADMIN_RIGHTS,
    GROUP_ADMIN_RIGHTS,
    Chat,
    Member,
    User,
    now,
)
from bots.emulator.updates import Inbox

# A bot command at the start of a text ("/protect@nezuko_bot"), and @mentions anywhere.
COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?")
MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}")

UserRef = User | int
ChatRef = Chat | User | int | str


def utf16_len(text: str) -> int:
    """Entity offsets and lengths count UTF-16 code units, as in Telegram."""
    return len(text.encode("utf-16-le")) // 2


def text_entities(text: str) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    command = COMMAND_RE.match(text)
    if command:
        entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command[0])})
    for mention in MENTION_RE.finditer(text):
        if command and mention.start() < command.end():
            continue
        entities.append(
            {
                "type": "mention",
                "offset": utf16_len(text[: mention.start()]),
                "length": utf16_len(mention[0]),
            }
        )
    return entities


class TelegramWorld:
    def __init__(self) -> None:
        self.users: dict[int, User] = {}
        self.bots_by_token: dict[str, User] = {}
        self.chats: dict[int, Chat] = {}
        self.private_chats: dict[tuple[int, int], Chat] = {}  # (bot id, user id)
        self.usernames: dict[str, User | Chat] = {}
        self.inboxes: dict[int, Inbox] = {}
        self.blocked: set[tuple[int, int]] = set()  # (bot id, user id)
        self._user_ids = itertools.count(1_000_000_001)
        self._bot_ids = itertools.count(7_000_000_001)
        self._supergroup_ids = itertools.count(1_000_000_001)
        self._group_ids = itertools.count(4_100_000_001)

    # --- creating ----------------------------------------------------------------

    def _claim_username(self, username: str | None, owner: User | Chat) -> None:
        if not username:
            return
        key = username.lower().lstrip("@")
        if key in self.usernames:
            raise EmulatorError(f"username @{username} is taken")
        self.usernames[key] = owner

    def create_user(
        self,
        first_name: str,
        username: str | None = None,
        *,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> User:
        user = User(
            id=next(self._user_ids),
            first_name=first_name,
            username=username,
            last_name=last_name,
            language_code=language_code,
        )
        self._claim_username(username, user)
        self.users[user.id] = user
        return user

    def create_bot(
        self,
        username: str = "nezuko_bot",
        first_name: str | None = None,
        *,
        token: str | None = None,
    ) -> User:
        """A bot with a fresh token (`<id>:<35 characters>`), or the token given."""
        if token is not None:
            bot_id = int(token.split(":", 1)[0])
        else:
            bot_id = next(self._bot_ids)
            token = f"{bot_id}:{secrets.token_urlsafe(27)[:35]}"
        if token in self.bots_by_token or bot_id in self.users:
            raise EmulatorError(f"a bot with id {bot_id} already exists")
        bot = User(
            id=bot_id,
            first_name=first_name or username.replace("_", " ").title(),
            username=username,
            is_bot=True,
            token=token,
        )
        self._claim_username(username, bot)
        self.users[bot.id] = bot
        self.bots_by_token[token] = bot
        self.inboxes[bot.id] = Inbox(bot.id)
        return bot

    def reissue_token(self, bot: User) -> str:
        """@BotFather's /revoke: the bot gets a new token and the old one stops working."""
        self.bots_by_token.pop(bot.token, None)
        bot.token = f"{bot.id}:{secrets.token_urlsafe(27)[:35]}"
        self.bots_by_token[bot.token] = bot
        return bot.token

    def _new_chat(self, chat: Chat, creator: UserRef | None) -> Chat:
        self._claim_username(chat.username, chat)
        self.chats[chat.id] = chat
        if creator is not None:
            owner = self._set_member(chat, self.user(creator), status="creator")
            owner.rights = dict.fromkeys(ADMIN_RIGHTS + GROUP_ADMIN_RIGHTS, True)
        return chat

    def create_supergroup(
        self,
        title: str,
        creator: UserRef | None = None,
        *,
        username: str | None = None,
        join_by_request: bool = False,
        join_to_send_messages: bool = False,
        is_forum: bool = False,
        permissions: dict[str, bool] | None = None,
        description: str | None = None,
    ) -> Chat:
        chat = Chat(
            id=-(1_000_000_000_000 + next(self._supergroup_ids)),
            type="supergroup",
            title=title,
            username=username,
            join_by_request=join_by_request,
            join_to_send_messages=join_to_send_messages or join_by_request,
            is_forum=is_forum,
            description=description,
        )
        if permissions is not None:
            chat.permissions.update(permissions)
        return self._new_chat(chat, creator)

    def create_group(self, title: str, creator: UserRef | None = None) -> Chat:
        """A basic group: restrictions need a supergroup (see `migrate`)."""
        chat = Chat(id=-next(self._group_ids), type="group", title=title)
        return self._new_chat(chat, creator)

    def create_channel(
        self,
        title: str,
        creator: UserRef | None = None,
        *,
        username: str | None = None,
        join_by_request: bool = False,
        description: str | None = None,
    ) -> Chat:
        """A channel; `username=None` makes it private (reachable only by id or invite link)."""
        chat = Chat(
            id=-(1_000_000_000_000 + next(self._supergroup_ids)),
            type="channel",
            title=title,
            username=username,
            join_by_request=join_by_request,
            description=description,
        )
        return self._new_chat(chat, creator)

    def link_discussion(self, channel: ChatRef, group: ChatRef) -> None:
        """Make `group` the channel's discussion group (both get linked_chat_id)."""
        channel_chat, group_chat = self.chat(channel), self.chat(group)
        if channel_chat.type != "channel" or group_chat.type != "supergroup":
            raise EmulatorError("link_discussion needs a channel and a supergroup")
        channel_chat.linked_chat_id, group_chat.linked_chat_id = group_chat.id, channel_chat.id

    # --- looking up --------------------------------------------------------------

    def user(self, ref: UserRef) -> User:
        user = self.users.get(ref if isinstance(ref, int) else ref.id)
        if user is None:
            raise EmulatorError(f"unknown user {ref!r}")
        return user

    def chat(self, ref: ChatRef) -> Chat:
        """A group, supergroup or channel by object, id or @username (see `private_chat`)."""
        if isinstance(ref, Chat):
            return ref
        if isinstance(ref, str):
            found = self.usernames.get(ref.lower().lstrip("@"))
            if isinstance(found, Chat):
                return found
            raise EmulatorError(f"unknown chat {ref!r}")
        chat = self.chats.get(ref if isinstance(ref, int) else ref.id)
        if chat is None:
            raise EmulatorError(f"unknown chat {ref!r}")
        return chat

    def private_chat(self, bot: User, user: User) -> Chat:
        chat = self.private_chats.get((bot.id, user.id))
        if chat is None:
            chat = Chat(id=user.id, type="private", peer=user, bot_id=bot.id)
            chat.members[user.id] = Member(user=user, status="member")
            chat.members[bot.id] = Member(user=bot, status="member")
            self.private_chats[(bot.id, user.id)] = chat
        return chat

    def bots_in(self, chat: Chat) -> list[tuple[User, Member]]:
        """The bots present in a chat with their member records."""
        found = []
        for bot_id in chat.bot_ids:
            member = chat.member(self.users[bot_id])
            if member.in_chat:
                found.append((member.user, member))
        return found

    # --- changing members ----------------------------------------------------------

    def _set_member(self, chat: Chat, user: User, **changes: Any) -> Member:
        member = chat.member(user)
        for name, value in changes.items():
            setattr(member, name, value)
        if user.is_bot:
            chat.bot_ids.add(user.id)
        return member

    def change_member(
        self,
        chat: Chat,
        user: User,
        mutate: Callable[[Member], None],
        *,
        actor: User,
        via_join_request: bool = False,
        invite_link: dict[str, Any] | None = None,
    ) -> bool:
        """Apply `mutate` to the user's record and tell the bots, as Telegram does.

        The user (if a bot) gets my_chat_member; admin bots get chat_member when they
        asked for it. Returns whether the member's standing changed at all.
        """
        member = chat.member(user)
        old = member.to_json(chat.type)
        mutate(member)
        if user.is_bot:
            chat.bot_ids.add(user.id)
        new = member.to_json(chat.type)
        if old == new or chat.type == "private":
            return False
        payload: dict[str, Any] = {
            "chat": chat.to_json(),
            "from": actor.to_json(),
            "date": now(),
            "old_chat_member": old,
            "new_chat_member": new,
        }
        if via_join_request:
            payload["via_join_request"] = True
        if invite_link is not None:
            payload["invite_link"] = invite_link
        if user.is_bot:
            self.push(user, "my_chat_member", payload)
        for bot, bot_member in self.bots_in(chat):
            if bot.id != user.id and bot_member.is_admin:
                self.push(bot, "chat_member", as_seen_by(payload, bot))
        return True

    def push(self, bot: User, kind: str, payload: dict[str, Any]) -> None:
        """Queue an update for one bot, if that bot asks for this type.

        Telegram filters by the allowed_updates in force when an update is created.
        Until a bot first names its types, everything is queued and the first
        getUpdates/setWebhook filters, so a test need not race the first poll.
        """
        inbox = self.inboxes[bot.id]
        if inbox.allowed_list is None or inbox.wants(kind):
            inbox.push(kind, payload)

    # --- messages ----------------------------------------------------------------

    def new_message(
        self,
        chat: Chat,
        sender: User | None,
        *,
        text: str | None = None,
        reply_to: int | None = None,
        message_thread_id: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Store a message in the chat and return its dict (not yet delivered)."""
        message: dict[str, Any] = {
            "message_id": chat.next_message_id(),
            "date": now(),
            "chat": chat.to_json(),
        }
        if sender is not None:
            message["from"] = sender.to_json()
            if sender.is_bot:
                chat.bot_authors[message["message_id"]] = sender.id
        if message_thread_id is not None:
            if message_thread_id not in chat.topics:
                raise EmulatorError(f"no topic {message_thread_id} in {chat.title}")
            message["message_thread_id"] = message_thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            replied = chat.messages.get(reply_to)
            if replied is None:
                raise EmulatorError(f"no message {reply_to} in {chat.title}")
            message["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        if text is not None:
            message["text"] = text
            entities = text_entities(text)
            if entities:
                message["entities"] = entities
        message.update(fields)
        chat.messages[message["message_id"]] = message
        return message

    def deliver(self, chat: Chat, message: dict[str, Any], *, edited: bool = False) -> None:
        """Send a message to every bot in the chat; bots never see messages of other bots."""
        if chat.type == "private":
            kind = "edited_message" if edited else "message"
            self.push(self.users[chat.bot_id], kind, message)  # type: ignore[index]
            return
        if chat.type == "channel":
            kind = "edited_channel_post" if edited else "channel_post"
        else:
            kind = "edited_message" if edited else "message"
        author = self.users.get(message.get("from", {}).get("id", 0))
        if author is not None and author.is_bot:
            return
        for bot, _member in self.bots_in(chat):
            self.push(bot, kind, message)


def as_seen_by(payload: dict[str, Any], bot: User) -> dict[str, Any]:
    """The update as this bot receives it: an invite link another admin created shows
    only its first part, the rest replaced with "…" (Bot API, ChatInviteLink)."""
    link = payload.get("invite_link")
    if link is None or link["creator"]["id"] == bot.id:
        return payload
    url = link["invite_link"]
    head, _, secret = url.rpartition("/+") if "/+" in url else url.rpartition("/")
    shown = f"{head}/+{secret[:len(secret) // 2]}…" if "/+" in url else f"{head}/…"
    return {**payload, "invite_link": {**link, "invite_link": shown}}
