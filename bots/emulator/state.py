"""What the emulator remembers: users, chats, members and messages.

Everything here is plain data with a `to_json` that answers in the Bot API's
shapes (the dicts python-telegram-bot's `de_json` accepts). Rules that decide
what may happen live in `api.py` and `people.py`; who is told about it in `world.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Every ChatPermissions field; omitted fields in a request mean False, as in Telegram.
PERMISSION_FIELDS: tuple[str, ...] = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_edit_tag",
    "can_react_to_messages",
)
MEDIA_PERMISSIONS: tuple[str, ...] = (
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
)
# Permissions that must all be granted for a restricted member to become a plain member.
# The newest fields (tags, reactions) are left out: clients of older Bot API versions never
# send them and Telegram does not keep a member restricted over them.
UNRESTRICTING_PERMISSIONS: tuple[str, ...] = PERMISSION_FIELDS[:13]

ADMIN_RIGHTS: tuple[str, ...] = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)
CHANNEL_ADMIN_RIGHTS: tuple[str, ...] = (
    "can_post_messages",
    "can_edit_messages",
    "can_manage_direct_messages",
)
GROUP_ADMIN_RIGHTS: tuple[str, ...] = ("can_pin_messages", "can_manage_topics")

ACTIVE_STATUSES = frozenset({"creator", "administrator", "member"})

# Telegram's own service accounts, as they appear in `from` of special messages.
TELEGRAM_SERVICE_USER = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}


def now() -> int:
    """Unix time read on every use, so `time_machine` moves the emulator's clock too."""
    return int(time.time())


def default_permissions() -> dict[str, bool]:
    """A new group's defaults: members may send anything, but not manage the chat."""
    perms = dict.fromkeys(PERMISSION_FIELDS, True)
    perms.update(can_change_info=False, can_pin_messages=False, can_manage_topics=False)
    return perms


@dataclass(eq=False)
class User:
    """A person or a bot. Bots also carry their token."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    is_bot: bool = False
    language_code: str | None = None
    token: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    def me_json(self) -> dict[str, Any]:
        """getMe's answer: a bot's User with its capabilities (privacy mode off)."""
        return {
            **self.to_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }


@dataclass
class Member:
    """One user's standing in one chat, stored as Telegram reports it."""

    user: User
    status: str = "left"  # creator | administrator | member | restricted | left | kicked
    rights: dict[str, bool] = field(default_factory=dict)
    permissions: dict[str, bool] = field(default_factory=dict)
    until_date: int = 0
    is_member: bool = False  # for "restricted" only: still in the chat?
    is_anonymous: bool = False
    can_be_edited: bool = False
    custom_title: str | None = None

    def expire(self, at: int) -> bool:
        """Lift a timed restriction or ban whose until_date has passed; True if it changed."""
        if (
            self.status not in ("restricted", "kicked")
            or not self.until_date
            or self.until_date > at
        ):
            return False
        if self.status == "restricted":
            self.status = "member" if self.is_member else "left"
        else:
            self.status = "left"
        self.permissions, self.until_date, self.is_member = {}, 0, False
        return True

    @property
    def in_chat(self) -> bool:
        """Counts as being in the chat (RESTRICTED only while `is_member`)."""
        return self.status in ACTIVE_STATUSES or (self.status == "restricted" and self.is_member)

    @property
    def is_admin(self) -> bool:
        return self.status in ("creator", "administrator")

    def has_right(self, right: str) -> bool:
        return self.status == "creator" or (
            self.status == "administrator" and self.rights.get(right, False)
        )

    def to_json(self, chat_type: str) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "user": self.user.to_json()}
        if self.status == "creator":
            data["is_anonymous"] = self.is_anonymous
            if self.custom_title:
                data["custom_title"] = self.custom_title
        elif self.status == "administrator":
            data.update(can_be_edited=self.can_be_edited, is_anonymous=self.is_anonymous)
            fields = ADMIN_RIGHTS + (
                CHANNEL_ADMIN_RIGHTS if chat_type == "channel" else GROUP_ADMIN_RIGHTS
            )
            data.update({name: self.rights.get(name, False) for name in fields})
            if self.custom_title:
                data["custom_title"] = self.custom_title
        elif self.status == "restricted":
            data["is_member"] = self.is_member
            data.update({name: self.permissions.get(name, False) for name in PERMISSION_FIELDS})
            data["until_date"] = self.until_date
        elif self.status == "kicked":
            data["until_date"] = self.until_date
        return data


@dataclass(eq=False)
class Chat:
    """A group, supergroup, channel or a private chat between one bot and one user."""

    id: int
    type: str  # private | group | supergroup | channel
    title: str | None = None
    username: str | None = None
    description: str | None = None
    is_forum: bool = False
    join_by_request: bool = False
    join_to_send_messages: bool = False
    permissions: dict[str, bool] = field(default_factory=default_permissions)
    linked_chat_id: int | None = None
    members: dict[int, Member] = field(default_factory=dict)
    bot_ids: set[int] = field(default_factory=set)  # bots ever seen here, for O(bots) fan-out
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_message_id: int = 0
    # Which bot sent a message: channel posts carry no `from`, yet buttons need their bot.
    bot_authors: dict[int, int] = field(default_factory=dict)
    join_requests: dict[int, int] = field(default_factory=dict)  # user id -> date asked
    invite_links: dict[str, dict[str, Any]] = field(default_factory=dict)
    topics: dict[int, str] = field(default_factory=dict)  # message_thread_id -> name
    migrated_to: int | None = None
    # Private chats only: the user on the other side and the bot it belongs to.
    peer: User | None = None
    bot_id: int | None = None

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    def member(self, user: User) -> Member:
        """The user's Member record, created as "left" on first sight."""
        member = self.members.get(user.id)
        if member is None:
            member = self.members[user.id] = Member(user=user)
        elif member.until_date:
            member.expire(now())
        return member

    def next_message_id(self) -> int:
        # Message ids are per chat in groups and channels, as in Telegram.
        self.last_message_id += 1
        return self.last_message_id

    def to_json(self) -> dict[str, Any]:
        """The short Chat object embedded in messages and updates."""
        if self.type == "private" and self.peer is not None:
            data = {"id": self.id, "type": "private", "first_name": self.peer.first_name}
            if self.peer.username:
                data["username"] = self.peer.username
            return data
        data = {"id": self.id, "type": self.type, "title": self.title}
        if self.username:
            data["username"] = self.username
        if self.is_forum:
            data["is_forum"] = True
        return data

    def full_json(self) -> dict[str, Any]:
        """getChat's ChatFullInfo."""
        data: dict[str, Any] = {
            **self.to_json(),
            "accent_color_id": abs(self.id) % 7,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        if self.description:
            data["description"] = self.description
        if self.is_group:
            data["permissions"] = dict(self.permissions)
            if self.join_by_request:
                data["join_by_request"] = True
            if self.join_to_send_messages:
                data["join_to_send_messages"] = True
        if self.linked_chat_id:
            data["linked_chat_id"] = self.linked_chat_id
        primary = next((link for link in self.invite_links.values() if link["is_primary"]), None)
        if primary is not None:
            data["invite_link"] = primary["invite_link"]
        return data
