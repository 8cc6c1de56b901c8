"""Who is named on which warning, and what a warning says.

Telegram allows about 20 messages a minute in a group, and a join raid of a
thousand users would need fifty minutes of one-warning-per-user. So warnings
coalesce: while a warning in a chat (and topic) is young and not full, the
next restricted user is added to it and the message is edited (debounced)
instead of a new one being sent. A user who complies is taken off their
warning; an empty warning is deleted.

This module is state and rendering only; `actions/warning_messages.py` sends,
edits and deletes the messages and is the only code that changes the board,
because the board is the record of those messages (which one names whom).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from groups import languages
from groups.config import ChannelConfig
from verification import wording
from verification.updates import Person, callback_data

COALESCE_SECONDS = 60.0  # a warning accepts more users for this long
MAX_USERS = 50  # ...and up to this many
NAMES_SHOWN = 15  # names listed in the text; the rest are "+N more"
EDIT_DELAY = 2.0  # edits of one warning are at most this frequent


@dataclasses.dataclass(eq=False)
class Warning:
    chat_id: int
    thread_id: int | None
    group_title: str
    custom_text: str = ""
    # The group's language (resolved: `Engine.group_language`) and its custom warnings
    # per language: a warning naming one person speaks theirs, several the group's.
    language: str = languages.DEFAULT
    custom_texts: tuple[tuple[str, str], ...] = ()
    users: dict[int, tuple[Person, tuple[ChannelConfig, ...]]] = dataclasses.field(
        default_factory=dict
    )
    # How many of their channels each person still needs (the policy, `Restrict.short`).
    shorts: dict[int, int] = dataclasses.field(default_factory=dict)
    policy: str = "all"
    message_id: int | None = None
    created_at: float = dataclasses.field(default_factory=time.monotonic)
    posted: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    edit_pending: bool = False
    gone: bool = False

    @property
    def user_ids(self) -> frozenset[int]:
        return frozenset(self.users)

    def accepts_more(self, now: float) -> bool:
        return (not self.gone and len(self.users) < MAX_USERS
                and now - self.created_at < COALESCE_SECONDS)

    def channels(self) -> tuple[ChannelConfig, ...]:
        """Every channel someone on this warning is missing, in first-seen order."""
        seen: dict[int, ChannelConfig] = {}
        for _, missing in self.users.values():
            for channel in missing:
                seen.setdefault(channel.chat_id, channel)
        return tuple(seen.values())


class WarningBoard:
    """The live warnings of one bot, by chat/topic, by message and by user."""

    def __init__(self) -> None:
        self._open: dict[tuple[int, int | None], Warning] = {}
        self._by_message: dict[tuple[int, int], Warning] = {}
        self._by_user: dict[tuple[int, int], Warning] = {}

    def of_user(self, chat_id: int, user_id: int) -> Warning | None:
        return self._by_user.get((chat_id, user_id))

    def of_message(self, chat_id: int, message_id: int) -> Warning | None:
        return self._by_message.get((chat_id, message_id))

    def add(self, chat_id: int, thread_id: int | None, group_title: str, person: Person,
            missing: tuple[ChannelConfig, ...], custom_text: str = "", *,
            short: int = 0, policy: str = "all", language: str = languages.DEFAULT,
            custom_texts: tuple[tuple[str, str], ...] = ()) -> tuple[Warning, bool]:
        """Put the person on a warning: `(warning, is_new)`. New ones must be posted."""
        existing = self.of_user(chat_id, person.id)
        if existing is not None and not existing.gone:
            existing.users[person.id] = (person, missing)
            existing.shorts[person.id] = short or len(missing)
            return existing, False
        key = (chat_id, thread_id)
        warning = self._open.get(key)
        is_new = warning is None or not warning.accepts_more(time.monotonic())
        if is_new:
            warning = Warning(chat_id, thread_id, group_title, custom_text)
            self._open[key] = warning
        # The group's current text, so a setting changed meanwhile shows on the next edit.
        warning.custom_text = custom_text
        warning.custom_texts = custom_texts
        warning.language = language
        warning.policy = policy
        warning.users[person.id] = (person, missing)
        warning.shorts[person.id] = short or len(missing)
        self._by_user[(chat_id, person.id)] = warning
        return warning, is_new

    def posted(self, warning: Warning, message_id: int) -> None:
        warning.message_id = message_id
        self._by_message[(warning.chat_id, message_id)] = warning
        warning.posted.set()

    def remove_user(self, chat_id: int, user_id: int) -> Warning | None:
        warning = self._by_user.pop((chat_id, user_id), None)
        if warning is not None:
            warning.users.pop(user_id, None)
            warning.shorts.pop(user_id, None)
        return warning

    def forget(self, warning: Warning) -> None:
        """The message is gone: drop every reference to it."""
        warning.gone = True
        warning.posted.set()
        if self._open.get((warning.chat_id, warning.thread_id)) is warning:
            del self._open[(warning.chat_id, warning.thread_id)]
        if warning.message_id is not None:
            self._by_message.pop((warning.chat_id, warning.message_id), None)
        for user_id in list(warning.users):
            if self._by_user.get((warning.chat_id, user_id)) is warning:
                del self._by_user[(warning.chat_id, user_id)]

    def move_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """Supergroup migration: old warnings cannot be edited any more; forget them."""
        for warning in {w for (c, _), w in self._open.items() if c == old_chat_id}:
            self.forget(warning)


def language(warning: Warning) -> str:
    """Who reads it: one person named reads their own language; several, the group's."""
    people = [p for p, _ in warning.users.values()]
    if len(people) == 1:
        return languages.for_person(people[0].language_code, warning.language)
    return warning.language


def render(warning: Warning) -> tuple[str, InlineKeyboardMarkup]:
    """The warning's HTML text and its keyboard, from the same context, in the
    language of who reads it (`language`)."""
    with languages.speaking(language(warning)):
        return _render(warning)


def _render(warning: Warning) -> tuple[str, InlineKeyboardMarkup]:
    people = [p for p, _ in warning.users.values()]
    channels = warning.channels()
    context = {
        "count": len(people),
        "names": wording.mentions(((p.id, p.name) for p in people[:NAMES_SHOWN]),
                                  more=max(0, len(people) - NAMES_SHOWN)),
        "group": wording.isolate(warning.group_title),
        "channels": needed(channels, max(warning.shorts.values(), default=0), warning.policy),
        "button": wording.joined_button(),
        "custom": _custom(warning, people, channels),
    }
    text = render_to_string("verification/telegram/warning.html", context).strip()
    return text, keyboard(channels, people[0].id if len(people) == 1 else 0)


def needed(channels: tuple[ChannelConfig, ...], short: int, policy: str) -> SafeString:
    """What a text says must be joined, as HTML: every channel listed (`all`), or how
    many more of the listed ones (`any`, `at least N`)."""
    return wording.channels_needed(
        [c.label for c in channels], every=not short or short >= len(channels), short=short,
        policy_count=int(policy) if policy.isdigit() else 0)


def keyboard(channels: tuple[ChannelConfig, ...], bound_user_id: int,
             kind: str = "joined") -> InlineKeyboardMarkup:
    """One "Join <title>" per channel that has a link, then "I've joined"."""
    rows = [
        [InlineKeyboardButton(wording.join_button(c.label)[:64], url=c.join_url)]
        for c in channels
        if c.join_url
    ]
    rows.append([InlineKeyboardButton(wording.joined_button(),
                                      callback_data=callback_data(kind, bound_user_id))])
    return InlineKeyboardMarkup(rows)


def _custom(warning: Warning, people: list[Person], channels: tuple[ChannelConfig, ...]) -> str:
    """A group's own warning text in the reader's language (else its default custom
    text), with every placeholder value escaped."""
    custom = dict(warning.custom_texts).get(language(warning)) or warning.custom_text
    if not custom:
        return ""
    values = {
        "mention": wording.mentions((p.id, p.name) for p in people[:NAMES_SHOWN]),
        "group": wording.name_html(warning.group_title),
        "channels": ", ".join(wording.name_html(c.label) for c in channels),
    }
    text = escape(custom)
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return mark_safe(text)  # noqa: S308 - built from escaped parts only
