"""Acting as people: joining, leaving, talking, pressing buttons, promoting bots.

Each action changes state the way the Telegram app would and queues exactly the
updates Telegram sends each bot. They are plain (not async) methods: call them
from the event loop the emulator runs on (tests do), and await
`wait_for_call` or the bot's reaction afterwards.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from bots.emulator.errors import EmulatorError
from bots.emulator.state import (
    ADMIN_RIGHTS,
    CHANNEL_ADMIN_RIGHTS,
    CHANNEL_BOT,
    GROUP_ADMIN_RIGHTS,
    GROUP_ANONYMOUS_BOT,
    TELEGRAM_SERVICE_USER,
    Chat,
    Member,
    User,
    now,
)
from bots.emulator.world import ChatRef, TelegramWorld, UserRef

MEDIA_KINDS = ("photo", "document", "sticker", "video", "voice", "animation", "audio")
# Rights an admin gets from `promote` when none are named: everything but promoting others.
DEFAULT_PROMOTED = frozenset(ADMIN_RIGHTS + CHANNEL_ADMIN_RIGHTS + GROUP_ADMIN_RIGHTS) - {
    "can_promote_members"
}


def _media(kind: str, file_seq: int) -> dict[str, Any]:
    file = {"file_id": f"emu-{kind}-{file_seq}", "file_unique_id": f"u{file_seq}"}
    if kind == "photo":
        return {"photo": [{**file, "width": 640, "height": 480, "file_size": 20480}]}
    if kind == "sticker":
        sticker = {**file, "type": "regular", "width": 512, "height": 512}
        return {"sticker": {**sticker, "is_animated": False, "is_video": False}}
    if kind in ("video", "animation"):
        return {kind: {**file, "width": 640, "height": 360, "duration": 5}}
    if kind in ("voice", "audio"):
        return {kind: {**file, "duration": 3}}
    return {"document": {**file, "file_name": "file.pdf", "mime_type": "application/pdf"}}


class People(TelegramWorld):
    def __init__(self) -> None:
        super().__init__()
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)

    # --- reading state ---------------------------------------------------------------

    def member(self, chat: ChatRef, user: UserRef) -> dict[str, Any]:
        """The user's ChatMember, exactly as getChatMember would answer."""
        found = self.chat(chat)
        return found.member(self.user(user)).to_json(found.type)

    def messages(self, chat: ChatRef) -> list[dict[str, Any]]:
        """Messages currently in the chat (deleted ones are gone), oldest first."""
        return list(self.chat(chat).messages.values())

    def callback_answer(self, callback_query_id: str) -> dict[str, Any] | None:
        """What the bot answered to a button press (text, show_alert, url), or None yet."""
        return self.callback_queries[callback_query_id]["answer"]

    # --- membership --------------------------------------------------------------------

    def _authority(self, chat: Chat, by: UserRef | None, right: str) -> User:
        """The acting admin: `by`, or the chat's creator when not given."""
        if by is None:
            creator = next((m.user for m in chat.members.values() if m.status == "creator"), None)
            if creator is None:
                raise EmulatorError(f"{chat.title} has no creator; pass by=")
            return creator
        actor = self.user(by)
        if not chat.member(actor).has_right(right):
            raise EmulatorError(f"{actor.first_name} lacks {right} in {chat.title}")
        return actor

    def _enter(
        self,
        chat: Chat,
        user: User,
        actor: User,
        *,
        via_join_request: bool = False,
        invite_link: dict[str, Any] | None = None,
        announcer: User | None = None,
    ) -> None:
        """Bring the user in; `announcer` is the service message's sender if not `actor`."""
        member = chat.member(user)
        if member.status == "kicked":
            raise EmulatorError(f"{user.first_name} is banned from {chat.title}")
        if member.in_chat:
            raise EmulatorError(f"{user.first_name} is already in {chat.title}")
        chat.join_requests.pop(user.id, None)

        def enter(m: Member) -> None:
            # A restricted user who comes back stays restricted, now as a member.
            if m.status == "restricted":
                m.is_member = True
            else:
                m.status = "member"

        self.change_member(
            chat,
            user,
            enter,
            actor=actor,
            via_join_request=via_join_request,
            invite_link=invite_link,
        )
        # Groups show a service message; channels never do.
        if chat.is_group:
            message = self.new_message(
                chat,
                announcer or actor,
                new_chat_members=[user.to_json()],
                new_chat_member=user.to_json(),
                new_chat_participant=user.to_json(),
            )
            self.deliver(chat, message)

    def _exit(self, chat: Chat, user: User, actor: User, *, ban_until: int | None = None) -> None:
        member = chat.member(user)
        was_in = member.in_chat

        def leave(m: Member) -> None:
            if ban_until is not None:
                m.status, m.until_date, m.permissions, m.rights = "kicked", ban_until, {}, {}
                m.is_member = False
            elif m.status == "restricted":
                m.is_member = False
            else:
                m.status, m.rights = "left", {}

        self.change_member(chat, user, leave, actor=actor)
        if was_in and chat.is_group:
            message = self.new_message(
                chat,
                actor,
                left_chat_member=user.to_json(),
                left_chat_participant=user.to_json(),
            )
            self.deliver(chat, message)

    def join(self, chat: ChatRef, user: UserRef, *, invite_link: str | None = None) -> None:
        """The user joins by themselves (public link or invite link).

        Chats with join requests are not enforced here, so a test can set up an
        existing member; `request_join` is how a newcomer asks.
        """
        found, person = self.chat(chat), self.user(user)
        link = found.invite_links.get(invite_link) if invite_link else None
        if invite_link and (link is None or link["is_revoked"]):
            raise EmulatorError(f"invite link {invite_link} is invalid or revoked")
        if link is not None and link["creates_join_request"]:
            raise EmulatorError("this link needs an admin's approval: use request_join()")
        self._enter(found, person, person, invite_link=link)

    def add_member(self, chat: ChatRef, user: UserRef, by: UserRef) -> None:
        """`by` adds the user (a group only; channels cannot add people directly)."""
        found = self.chat(chat)
        if found.type == "channel":
            raise EmulatorError("people join channels themselves; use join()")
        self._enter(found, self.user(user), self.user(by))

    def add_bot(self, chat: ChatRef, bot: UserRef, by: UserRef | None = None) -> None:
        """Add a bot as a plain member (it gets my_chat_member and the service message)."""
        found = self.chat(chat)
        if found.type == "channel":
            raise EmulatorError("bots can only be added to channels as admins; use promote()")
        actor = self._authority(found, by, "can_invite_users") if by is None else self.user(by)
        self._enter(found, self.user(bot), actor)

    def leave(self, chat: ChatRef, user: UserRef) -> None:
        found, person = self.chat(chat), self.user(user)
        member = found.member(person)
        if not member.in_chat:
            raise EmulatorError(f"{person.first_name} is not in {found.title}")
        if member.status == "creator":
            raise EmulatorError("the creator cannot leave in the emulator")
        self._exit(found, person, person)

    def ban(
        self, chat: ChatRef, user: UserRef, by: UserRef | None = None, *, until_date: int = 0
    ) -> None:
        """An admin removes and bans the user."""
        found, person = self.chat(chat), self.user(user)
        actor = self._authority(found, by, "can_restrict_members")
        if found.member(person).status == "creator":
            raise EmulatorError("the creator cannot be banned")
        self._exit(found, person, actor, ban_until=until_date)

    def promote(
        self, chat: ChatRef, who: UserRef, by: UserRef | None = None, **rights: bool | str
    ) -> None:
        """Make `who` an admin with `rights` (default: all but can_promote_members).

        A bot not yet in the chat is added as an admin at once, which is the only way
        into a channel for a bot.
        """
        found, person = self.chat(chat), self.user(who)
        actor = self._authority(found, by, "can_promote_members")
        allowed = ADMIN_RIGHTS + (
            CHANNEL_ADMIN_RIGHTS if found.type == "channel" else GROUP_ADMIN_RIGHTS
        )
        unknown = set(rights) - set(allowed) - {"is_anonymous", "custom_title"}
        if unknown:
            raise EmulatorError(f"unknown admin rights for a {found.type}: {sorted(unknown)}")
        member = found.member(person)
        if member.status == "creator":
            raise EmulatorError("the creator is already the owner")
        if member.status == "kicked":
            raise EmulatorError(f"{person.first_name} is banned from {found.title}")
        granted = {name: name in DEFAULT_PROMOTED for name in allowed} if not rights else {}
        granted.update({k: bool(v) for k, v in rights.items() if k in allowed})
        granted["can_manage_chat"] = True
        was_in = member.in_chat

        def make_admin(m: Member) -> None:
            m.status, m.rights, m.permissions, m.until_date = "administrator", granted, {}, 0
            m.is_anonymous = bool(rights.get("is_anonymous", False))
            m.custom_title = rights.get("custom_title")  # type: ignore[assignment]
            m.is_member = False

        self.change_member(found, person, make_admin, actor=actor)
        if not was_in and found.is_group:
            message = self.new_message(
                found, actor, new_chat_members=[person.to_json()], new_chat_member=person.to_json()
            )
            self.deliver(found, message)

    def demote(self, chat: ChatRef, who: UserRef, by: UserRef | None = None) -> None:
        found, person = self.chat(chat), self.user(who)
        actor = self._authority(found, by, "can_promote_members")
        if found.member(person).status != "administrator":
            raise EmulatorError(f"{person.first_name} is not an admin of {found.title}")

        def make_member(m: Member) -> None:
            m.status, m.rights, m.is_anonymous, m.custom_title = "member", {}, False, None

        self.change_member(found, person, make_member, actor=actor)

    def migrate(self, group: ChatRef, by: UserRef | None = None) -> Chat:
        """Upgrade a basic group to a supergroup with the same people, as Telegram does.

        Bots see `migrate_to_chat_id` in the old group and `migrate_from_chat_id` in
        the new one; later calls naming the old id answer 400 with migrate_to_chat_id.
        """
        old = self.chat(group)
        if old.type != "group":
            raise EmulatorError(f"{old.title} is not a basic group")
        actor = self._authority(old, by, "can_change_info")
        new = self.create_supergroup(old.title or "", permissions=dict(old.permissions))
        for user_id, member in old.members.items():
            new.members[user_id] = Member(**{**member.__dict__, "rights": dict(member.rights)})
        new.bot_ids = set(old.bot_ids)
        self.deliver(old, self.new_message(old, actor, migrate_to_chat_id=new.id))
        old.migrated_to = new.id
        self.deliver(new, self.new_message(new, actor, migrate_from_chat_id=old.id))
        return new

    def request_join(self, chat: ChatRef, user: UserRef, *, invite_link: str | None = None) -> None:
        """The user asks to join; admin bots that can invite users get chat_join_request."""
        found, person = self.chat(chat), self.user(user)
        link = found.invite_links.get(invite_link) if invite_link else None
        if not found.join_by_request and not (link and link["creates_join_request"]):
            raise EmulatorError(f"{found.title} does not use join requests")
        if found.member(person).in_chat:
            raise EmulatorError(f"{person.first_name} is already in {found.title}")
        found.join_requests[person.id] = now()
        payload: dict[str, Any] = {
            "chat": found.to_json(),
            "from": person.to_json(),
            "user_chat_id": person.id,
            "date": found.join_requests[person.id],
        }
        if link is not None:
            payload["invite_link"] = link
        for bot, member in self.bots_in(found):
            if member.has_right("can_invite_users"):
                self.push(bot, "chat_join_request", payload)

    # --- talking -----------------------------------------------------------------------

    def _speaking_chat(self, chat: ChatRef, person: User) -> Chat:
        if isinstance(chat, User) and chat.is_bot:
            if (chat.id, person.id) in self.blocked:
                # Telegram's app unblocks a bot before anything is sent to it.
                self.unblock(person, chat)
            return self.private_chat(chat, person)
        found = self.chat(chat)
        member = found.member(person)
        if found.type == "channel":
            if not member.has_right("can_post_messages"):
                raise EmulatorError(f"{person.first_name} cannot post in {found.title}")
            return found
        if not member.in_chat:
            raise EmulatorError(f"{person.first_name} is not in {found.title}")
        if not member.is_admin:
            perms = member.permissions if member.status == "restricted" else found.permissions
            if not perms.get("can_send_messages", False) or (
                member.status == "restricted" and not found.permissions.get("can_send_messages")
            ):
                raise EmulatorError(f"{person.first_name} may not send messages in {found.title}")
        return found

    def send_message(
        self,
        chat: ChatRef,
        user: UserRef,
        text: str | None = None,
        reply_to: int | None = None,
        message_thread_id: int | None = None,
        *,
        media: str | None = None,
    ) -> dict[str, Any]:
        """The user sends a message (a bot as `chat` means its private chat).

        `media="photo"` (or document, sticker, video, voice, animation, audio) sends
        that kind instead, with `text` as its caption. In a channel the post is sent
        as the channel, as Telegram shows it.
        """
        person = self.user(user)
        found = self._speaking_chat(chat, person)
        fields: dict[str, Any] = {}
        if media is not None:
            if media not in MEDIA_KINDS:
                raise EmulatorError(f"media must be one of {MEDIA_KINDS}")
            fields.update(_media(media, next(self._file_ids)))
            if text:
                fields["caption"] = text
            text = None
        elif not text:
            raise EmulatorError("a text message needs text")
        sender: User | None = person
        if found.type == "channel":
            sender, fields["sender_chat"] = None, found.to_json()
        message = self.new_message(
            found,
            sender,
            text=text,
            reply_to=reply_to,
            message_thread_id=message_thread_id,
            **fields,
        )
        self.deliver(found, message)
        return message

    def edit_message(self, chat: ChatRef, message_id: int, text: str) -> dict[str, Any]:
        """The author edits their message; bots in the chat get edited_message."""
        found = self.chat(chat)
        message = found.messages.get(message_id)
        if message is None or "text" not in message:
            raise EmulatorError(f"no text message {message_id} in {found.title}")
        message["text"], message["edit_date"] = text, now()
        self.deliver(found, message, edited=True)
        return message

    def send_as_chat(self, chat: ChatRef, sender_chat: ChatRef, text: str) -> dict[str, Any]:
        """An anonymous admin (sender_chat is the group) or a channel speaking in a group."""
        found, as_chat = self.chat(chat), self.chat(sender_chat)
        author = GROUP_ANONYMOUS_BOT if as_chat.id == found.id else CHANNEL_BOT
        message = self.new_message(found, None, text=text, sender_chat=as_chat.to_json())
        message["from"] = dict(author)
        self.deliver(found, message)
        return message

    def post(self, channel: ChatRef, text: str) -> dict[str, Any]:
        """A channel post (channel_post to the channel's admin bots)."""
        found = self.chat(channel)
        if found.type != "channel":
            raise EmulatorError("post() is for channels")
        message = self.new_message(found, None, text=text, sender_chat=found.to_json())
        self.deliver(found, message)
        return message

    def auto_forward(self, channel: ChatRef, text: str) -> dict[str, Any]:
        """Post in a channel; Telegram copies it into the linked discussion group.

        Returns the group's copy (`is_automatic_forward`, from the Telegram service user).
        """
        found = self.chat(channel)
        if not found.linked_chat_id:
            raise EmulatorError(f"{found.title} has no linked discussion group")
        post = self.post(found, text)
        group = self.chat(found.linked_chat_id)
        message = self.new_message(
            group,
            None,
            text=text,
            sender_chat=found.to_json(),
            is_automatic_forward=True,
            forward_origin={
                "type": "channel",
                "chat": found.to_json(),
                "message_id": post["message_id"],
                "date": post["date"],
            },
        )
        message["from"] = dict(TELEGRAM_SERVICE_USER)
        self.deliver(group, message)
        return message

    def create_topic(self, chat: ChatRef, name: str, by: UserRef | None = None) -> int:
        """Open a forum topic; returns its message_thread_id."""
        found = self.chat(chat)
        if not found.is_forum:
            raise EmulatorError(f"{found.title} is not a forum")
        actor = self._authority(found, by, "can_manage_topics")
        message = self.new_message(
            found, actor, forum_topic_created={"name": name, "icon_color": 7322096}
        )
        thread_id = message["message_id"]
        found.topics[thread_id] = name
        message.update(message_thread_id=thread_id, is_topic_message=True)
        self.deliver(found, message)
        return thread_id

    def press_button(
        self, chat: ChatRef, message_id: int, user: UserRef, callback_data: str
    ) -> str:
        """The user presses an inline button of a bot's message; returns the query id."""
        person = self.user(user)
        found = self.chat(chat) if not isinstance(chat, User) else self.private_chat(chat, person)
        message = found.messages.get(message_id)
        if message is None:
            raise EmulatorError(f"no message {message_id} in chat {found.id}")
        rows = message.get("reply_markup", {}).get("inline_keyboard", [])
        if not any(button.get("callback_data") == callback_data for row in rows for button in row):
            raise EmulatorError(f"message {message_id} has no button with {callback_data!r}")
        bot_id = found.bot_authors.get(message_id)
        if bot_id is None:
            raise EmulatorError(f"message {message_id} was not sent by a bot")
        bot = self.users[bot_id]
        query_id = f"{next(self._callback_ids)}{secrets.randbelow(10**12):012d}"
        self.callback_queries[query_id] = {"bot_id": bot.id, "user_id": person.id, "answer": None}
        payload = {
            "id": query_id,
            "from": person.to_json(),
            "message": message,
            "chat_instance": str(abs(hash((bot.id, found.id))) % 10**18),
            "data": callback_data,
        }
        self.push(bot, "callback_query", payload)
        return query_id

    def block(self, user: UserRef, bot: UserRef, *, tell_bot: bool = True) -> None:
        """The user blocks the bot: its private messages then fail with 403, and the
        bot gets my_chat_member in the private chat (member -> kicked), as Telegram
        sends it. `tell_bot=False`: the bot never hears of it (it was blocked while
        nobody polled, and the update is gone): only a 403 will tell."""
        bot_user, person = self.user(bot), self.user(user)
        self.blocked.add((bot_user.id, person.id))
        self._private_standing(bot_user, person, "kicked", tell_bot=tell_bot)

    def unblock(self, user: UserRef, bot: UserRef) -> None:
        """The user unblocks the bot: my_chat_member (kicked -> member) in their private chat."""
        bot_user, person = self.user(bot), self.user(user)
        self.blocked.discard((bot_user.id, person.id))
        self._private_standing(bot_user, person, "member", tell_bot=True)

    def _private_standing(self, bot: User, person: User, status: str, *, tell_bot: bool) -> None:
        chat = self.private_chat(bot, person)
        member = chat.member(bot)
        if member.status == status:
            return
        old = member.to_json(chat.type)
        member.status = status
        if tell_bot:
            self.push(bot, "my_chat_member", {
                "chat": chat.to_json(), "from": person.to_json(), "date": now(),
                "old_chat_member": old, "new_chat_member": member.to_json(chat.type),
            })
