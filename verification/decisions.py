"""The rules, as pure functions from facts to frozen decisions.

Nothing here calls Telegram or the database: handlers gather the facts
(translated update, cached GroupConfig, membership answers) and
`actions.apply` carries a decision out. Tests assert on the values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from groups.config import ChannelConfig, GroupConfig
from verification.updates import (
    CHANNEL_BOT_ID,
    GROUP_ANONYMOUS_BOT_ID,
    IncomingMessage,
    Person,
)

# Membership answers per channel chat id: True, False, or None (unknown).
Answers = Mapping[int, bool | None]


@dataclasses.dataclass(frozen=True, slots=True)
class Allow:
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """The person must be checked against these channels before deciding."""

    person: Person
    channels: tuple[ChannelConfig, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Restrict:
    chat_id: int
    person: Person
    missing: tuple[ChannelConfig, ...]
    action: str  # ProtectedGroup.Action value: mute, kick or delete
    reason: str  # "message", "join", "left_channel", "unknown"
    delete_message_id: int | None = None
    thread_id: int | None = None
    warn: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class RejectSenderChat:
    """A member posted as one of their own channels: no bypass."""

    chat_id: int
    message_id: int
    sender_chat_id: int
    thread_id: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Unmute:
    chat_id: int
    person: Person
    reason: str  # "channel_join" or "button"


@dataclasses.dataclass(frozen=True, slots=True)
class StillMissing:
    chat_id: int
    person: Person
    missing: tuple[ChannelConfig, ...]
    unknown: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class NotOurs:
    """Restricted by a human admin (or not restricted at all): leave it alone."""

    chat_id: int
    person: Person


@dataclasses.dataclass(frozen=True, slots=True)
class ApproveJoin:
    chat_id: int
    person: Person


@dataclasses.dataclass(frozen=True, slots=True)
class AskToJoin:
    chat_id: int
    person: Person
    user_chat_id: int
    missing: tuple[ChannelConfig, ...]


Decision = Allow | Check | Restrict | RejectSenderChat | Unmute | StillMissing | NotOurs
JoinDecision = Allow | ApproveJoin | AskToJoin


def screen_message(
    message: IncomingMessage, config: GroupConfig | None
) -> Allow | Check | RejectSenderChat:
    """Everything that can be decided without asking about membership."""
    if config is None or not config.protecting:
        return Allow("unprotected")
    if message.is_automatic_forward:
        return Allow("automatic_forward")
    if message.sender_chat_id is not None:
        return _screen_sender_chat(message, config)
    if message.sender is None:
        return Allow("no_sender")
    if message.sender.id == GROUP_ANONYMOUS_BOT_ID:
        return Allow("anonymous_admin")
    return screen_person(message.sender, config)


def _screen_sender_chat(message: IncomingMessage, config: GroupConfig) -> Allow | RejectSenderChat:
    if message.sender_chat_id == config.chat_id:
        return Allow("anonymous_admin")
    if (config.channel(message.sender_chat_id) is not None
            or message.sender_chat_id == config.linked_chat_id):
        # Only a channel's own admins can post as it.
        return Allow("linked_channel")
    return RejectSenderChat(
        chat_id=config.chat_id,
        message_id=message.message_id,
        sender_chat_id=message.sender_chat_id,
        thread_id=message.thread_id,
    )


def screen_person(person: Person, config: GroupConfig | None) -> Allow | Check:
    """Who is never restricted: admins, bots, the allow-list."""
    if config is None or not config.protecting:
        return Allow("unprotected")
    if person.is_bot or person.id in (GROUP_ANONYMOUS_BOT_ID, CHANNEL_BOT_ID):
        return Allow("bot")
    if person.id in config.admin_ids:
        return Allow("admin")
    if person.id in config.allowed_user_ids:
        return Allow("allow_list")
    return Check(person, config.channels)


def split_answers(
    channels: tuple[ChannelConfig, ...], answers: Answers
) -> tuple[tuple[ChannelConfig, ...], tuple[ChannelConfig, ...]]:
    """(missing, unknown) channels, in the group's order."""
    missing = tuple(c for c in channels if answers.get(c.chat_id) is False)
    unknown = tuple(c for c in channels if c.chat_id in answers and answers[c.chat_id] is None)
    return missing, unknown


def decide_membership(
    check: Check,
    config: GroupConfig,
    answers: Answers,
    *,
    reason: str,
    message: IncomingMessage | None = None,
) -> Allow | Restrict:
    """AND over every linked channel; unknown answers follow the group's fail mode."""
    missing, unknown = split_answers(check.channels, answers)
    if not missing and not unknown:
        return Allow("subscribed")
    if not missing and config.fail_open:
        return Allow("fail_open")
    return Restrict(
        chat_id=config.chat_id,
        person=check.person,
        missing=missing + unknown,
        action=config.action,
        reason="unknown" if not missing else reason,
        delete_message_id=message.message_id if message else None,
        thread_id=message.thread_id if message else None,
    )


def decide_unmute(
    config: GroupConfig,
    person: Person,
    answers: Answers,
    *,
    restricted_by_nezuko: bool,
    reason: str,
) -> Unmute | StillMissing | NotOurs:
    """Lift a restriction only when Nezuko placed it and every channel is satisfied."""
    if not restricted_by_nezuko:
        return NotOurs(config.chat_id, person)
    missing, unknown = split_answers(config.channels, answers)
    if missing or unknown:
        return StillMissing(config.chat_id, person, missing + unknown, unknown=not missing)
    return Unmute(config.chat_id, person, reason)


@dataclasses.dataclass(frozen=True, slots=True)
class Moot:
    """An owed action that no longer needs doing."""

    chat_id: int
    person: Person
    why: str


def screen_owed(action: str, person: Person, config: GroupConfig | None, *,
                in_group: bool, restricted_by_nezuko: bool) -> Check | Unmute | Moot:
    """What an owed action needs now, before any membership answer.

    A restriction is owed only while the group is protected, the person is in it
    and is not exempt; an unmute only while the restriction is still Nezuko's
    (protection switched off: lift it without asking).
    """
    chat_id = config.chat_id if config is not None else 0
    if action == "restrict":
        if not in_group:
            return Moot(chat_id, person, "left the group")
        screened = screen_person(person, config)
        if isinstance(screened, Allow):
            return Moot(chat_id, person, screened.reason)
        return screened
    if not restricted_by_nezuko:
        return Moot(chat_id, person, "not our restriction")
    if config is None or not config.protecting:
        return Unmute(chat_id, person, "unprotect")
    return Check(person, config.channels)


def decide_owed(action: str, check: Check, config: GroupConfig,
                answers: Answers) -> Restrict | Unmute | Moot:
    """The owed action again, on today's answers: still needed, or moot."""
    if action == "restrict":
        decision = decide_membership(check, config, answers, reason="owed")
        if isinstance(decision, Allow):
            return Moot(config.chat_id, check.person, decision.reason)
        return decision
    unmute = decide_unmute(config, check.person, answers, restricted_by_nezuko=True,
                           reason="owed")
    if isinstance(unmute, Unmute):
        return unmute
    return Moot(config.chat_id, check.person, "no longer subscribed")


def decide_join_request(
    config: GroupConfig | None, person: Person, user_chat_id: int, answers: Answers
) -> JoinDecision:
    if config is None or not config.protecting:
        return Allow("unprotected")
    screened = screen_person(person, config)
    if isinstance(screened, Allow):
        return ApproveJoin(config.chat_id, person)
    missing, unknown = split_answers(config.channels, answers)
    if not missing and not unknown:
        return ApproveJoin(config.chat_id, person)
    if not missing and config.fail_open:
        return ApproveJoin(config.chat_id, person)
    return AskToJoin(config.chat_id, person, user_chat_id, missing + unknown)


def may_press(presser_id: int, warned_user_ids: frozenset[int]) -> bool:
    """Only a warned user may press "I've joined" on their warning."""
    return presser_id in warned_user_ids
