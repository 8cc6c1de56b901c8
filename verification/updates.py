"""Translate at the edge: what a Telegram update means, as frozen values.

The flows turn PTB objects into these dataclasses before deciding anything, so
`decisions.py` never sees python-telegram-bot and is tested with plain values.
The fast path reads raw JSON into the very same values (`from_raw`), which is
why it needs no rules of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from telegram import Chat, ChatMember, ChatMemberUpdated, Message, User

from bots.spool import storable

MEMBER_STATUSES = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR, ChatMember.MEMBER})
ADMIN_STATUSES = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR})

# Telegram's service account that posts as the group itself (anonymous admins).
GROUP_ANONYMOUS_BOT_ID = 1087968824
# Service account that relays the linked channel's posts into its discussion group.
CHANNEL_BOT_ID = 136817688


def is_member(member: ChatMember) -> bool:
    """RESTRICTED users are still members while Telegram sets `is_member`."""
    if member.status in MEMBER_STATUSES:
        return True
    return member.status == ChatMember.RESTRICTED and bool(getattr(member, "is_member", False))


def display_name(user: User | None) -> str:
    """The name Nezuko shows and stores: cleaned of what the database refuses (NUL...)."""
    if user is None:
        return ""
    return storable(user.full_name) or (f"@{storable(user.username)}" if user.username
                                        else str(user.id))


@dataclasses.dataclass(frozen=True, slots=True)
class Person:
    id: int
    name: str
    username: str = ""
    is_bot: bool = False
    # Their Telegram app's language (an IETF tag, "" when Telegram does not say): the
    # language of texts addressed to them (`groups.languages.for_person`). Not part of
    # who they are: a Person noted without it is the same person.
    language_code: str = dataclasses.field(default="", compare=False)

    @classmethod
    def from_user(cls, user: User) -> Person:
        return cls(user.id, display_name(user), storable(user.username), bool(user.is_bot),
                   _language_tag(user.language_code))

    @classmethod
    def from_raw(cls, user: Any) -> Person | None:
        """The same Person `from_user` gives, from a raw `User` object (the fast path);
        None when it is not one (no integer id), so the caller never guesses.

        The name follows PTB's `full_name` exactly: the ledger keeps it, and a name
        spelt differently here would overwrite the one the handlers stored.
        """
        if type(user) is not dict:
            return None
        user_id = user.get("id")
        if type(user_id) is not int:
            return None
        first, username = user.get("first_name"), user.get("username")
        # PTB's rule: no first name, no full name (a last name alone is not shown).
        name = ""
        if first and type(first) is str:
            last = user.get("last_name")
            name = storable(f"{first} {last}" if last and type(last) is str else first)
        if type(username) is not str:
            username = ""
        if not name:
            name = f"@{storable(username)}" if username else str(user_id)
        return cls(user_id, name, storable(username), bool(user.get("is_bot")),
                   _language_tag(user.get("language_code")))


def _joiner(cmu: ChatMemberUpdated) -> Person:
    """The member; their language from `from` when they acted themselves (Telegram
    sends `language_code` with the actor, not always with the member)."""
    person = Person.from_user(cmu.new_chat_member.user)
    actor = cmu.from_user
    if not person.language_code and actor is not None and actor.id == person.id:
        return dataclasses.replace(person, language_code=_language_tag(actor.language_code))
    return person


def _language_tag(tag: Any) -> str:
    """A `language_code` as given, when it looks like one (at most 35 characters of an
    IETF tag); else "" (the group's language is used)."""
    if type(tag) is not str or not 0 < len(tag) <= 35:
        return ""
    return tag if tag.replace("-", "").replace("_", "").isalnum() else ""


@dataclasses.dataclass(frozen=True, slots=True)
class MemberChange:
    """A person's membership of a chat changed (a chat_member update).

    `was_member`/`is_member` follow Telegram's notion of membership, so a
    restricted member who is still in the chat counts as a member.
    """

    chat_id: int
    chat_type: str
    person: Person
    was_member: bool
    is_member: bool
    old_status: str
    new_status: str
    actor_id: int | None = None
    # The invite link they joined through, as Telegram shows it to this bot (in
    # full only for links this bot created): how a join is attributed to a group.
    invite_link: str = ""

    @property
    def joined(self) -> bool:
        return not self.was_member and self.is_member

    @property
    def left(self) -> bool:
        return self.was_member and not self.is_member

    @property
    def admin_changed(self) -> bool:
        return (self.old_status in ADMIN_STATUSES) != (self.new_status in ADMIN_STATUSES)

    @property
    def restriction_changed(self) -> bool:
        """Someone (`actor_id`) restricted, re-restricted or freed a member who stayed."""
        if self.was_member != self.is_member:
            return False
        return ChatMember.RESTRICTED in (self.old_status, self.new_status)

    @classmethod
    def from_update(cls, cmu: ChatMemberUpdated | None) -> MemberChange | None:
        """None when nothing a Nezuko rule cares about changed (same status, same membership)."""
        if cmu is None:
            return None
        change = member_change(cmu)
        same_status = cmu.old_chat_member.status == cmu.new_chat_member.status
        if change is None and same_status and cmu.new_chat_member.status != ChatMember.RESTRICTED:
            return None
        was, now = change or (is_member(cmu.old_chat_member), is_member(cmu.new_chat_member))
        return cls(
            chat_id=cmu.chat.id,
            chat_type=cmu.chat.type,
            person=_joiner(cmu),
            was_member=was,
            is_member=now,
            old_status=cmu.old_chat_member.status,
            new_status=cmu.new_chat_member.status,
            actor_id=cmu.from_user.id if cmu.from_user else None,
            invite_link=cmu.invite_link.invite_link if cmu.invite_link else "",
        )


def member_change(cmu: ChatMemberUpdated) -> tuple[bool, bool] | None:
    """`(was_member, is_member)`, or None when membership did not change.

    PTB's example reads `cmu.difference()`, which misses a RESTRICTED member
    whose `is_member` flips without a status change (a restricted user who
    leaves stays RESTRICTED). Comparing both sides directly catches that.
    """
    was, now = is_member(cmu.old_chat_member), is_member(cmu.new_chat_member)
    if was == now:
        return None
    return was, now


@dataclasses.dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message (or edit) in a group, reduced to what the rules need."""

    chat_id: int
    message_id: int
    sender: Person | None
    sender_chat_id: int | None = None
    sender_chat_type: str = ""
    is_automatic_forward: bool = False
    thread_id: int | None = None
    is_edit: bool = False

    @classmethod
    def from_message(cls, message: Message, *, is_edit: bool = False) -> IncomingMessage:
        sender_chat = message.sender_chat
        return cls(
            chat_id=message.chat_id,
            message_id=message.message_id,
            sender=Person.from_user(message.from_user) if message.from_user else None,
            sender_chat_id=sender_chat.id if sender_chat else None,
            sender_chat_type=sender_chat.type if sender_chat else "",
            is_automatic_forward=bool(message.is_automatic_forward),
            # Only forum topics need the thread; replies in ordinary groups carry one too.
            thread_id=message.message_thread_id if message.is_topic_message else None,
            is_edit=is_edit,
        )

    @classmethod
    def from_raw(cls, message: Any, *, is_edit: bool = False) -> IncomingMessage | None:
        """The same value `from_message` gives, read straight from a raw `Message`
        object without building PTB objects (~100 µs each; see fastpath.py).

        None when a field the rules read is missing or malformed: the caller then
        leaves the update to the handlers rather than guess. The fast path calls
        this for every group message, hence the plain, positional style.
        """
        if type(message) is not dict:
            return None
        chat, message_id = message.get("chat"), message.get("message_id")
        if type(chat) is not dict or type(message_id) is not int:
            return None
        chat_id = chat.get("id")
        if type(chat_id) is not int:
            return None
        sender = message.get("from")
        if sender is not None:
            sender = Person.from_raw(sender)
            if sender is None:
                return None
        sender_chat = message.get("sender_chat")
        sender_chat_id, sender_chat_type = None, ""
        if sender_chat is not None:
            if type(sender_chat) is not dict or type(sender_chat.get("id")) is not int:
                return None
            sender_chat_id, sender_chat_type = sender_chat["id"], str(sender_chat.get("type") or "")
        # Only forum topics need the thread, as in from_message.
        thread_id = _int_or_none(message.get("message_thread_id")) \
            if message.get("is_topic_message") else None
        return cls(chat_id, message_id, sender, sender_chat_id, sender_chat_type,
                   bool(message.get("is_automatic_forward")), thread_id, is_edit)


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


@dataclasses.dataclass(frozen=True, slots=True)
class JoinRequest:
    chat_id: int
    person: Person
    user_chat_id: int

    @classmethod
    def from_request(cls, chat: Chat, user: User, user_chat_id: int | None) -> JoinRequest:
        return cls(chat.id, Person.from_user(user), user_chat_id or user.id)


@dataclasses.dataclass(frozen=True, slots=True)
class ButtonPress:
    """A press of one of Nezuko's inline buttons (callback_query)."""

    query_id: str
    chat_id: int | None
    message_id: int | None
    presser: Person
    kind: str  # "joined" (group warning) or "request" (private join-request message)
    target: int  # warned user id, or the group chat id of a join request

    @classmethod
    def parse(cls, query_id: str, data: str | None, presser: User,
              message: Message | None) -> ButtonPress | None:
        """None for callback data that is not ours or is malformed."""
        kind, target = parse_callback_data(data)
        if kind is None or target is None:
            return None
        return cls(
            query_id=query_id,
            chat_id=message.chat_id if message else None,
            message_id=message.message_id if message else None,
            presser=Person.from_user(presser),
            kind=kind,
            target=target,
        )


CALLBACK_PREFIX = "nz"
_KINDS = {"j": "joined", "r": "request"}


def callback_data(kind: str, target: int) -> str:
    code = {v: k for k, v in _KINDS.items()}[kind]
    return f"{CALLBACK_PREFIX}:{code}:{target}"


def parse_callback_data(data: str | None) -> tuple[str | None, int | None]:
    parts = (data or "").split(":")
    if len(parts) != 3 or parts[0] != CALLBACK_PREFIX or parts[1] not in _KINDS:
        return None, None
    try:
        return _KINDS[parts[1]], int(parts[2])
    except ValueError:
        return None, None
