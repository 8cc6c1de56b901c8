"""Changes the dashboard and the API make: one function each, audited.

Views and API operations call the gate first (`dashboard.access`), then these.
Group changes are saved through the ORM (`save()`), whose signals make runbot
drop its cached config; nothing here talks to a running bot directly.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from bots import audit
from bots.models import BotCommand, BotInstance
from bots.registration import TokenRejected, register_bot
from dashboard.access import telegram_id_of
from groups.models import ProtectedGroup

SETTINGS_FIELDS = [
    "action", "warning_delete_after", "fail_mode", "warning_text", "allowed_user_ids",
]
MEMBER_COMMANDS = {
    "unmute": BotCommand.Kind.UNMUTE,
    "ban": BotCommand.Kind.BAN,
    "unban": BotCommand.Kind.UNBAN,
    "recheck": BotCommand.Kind.RECHECK,
}
# Telegram user ids have at most 52 significant bits.
MAX_USER_ID = 2**52 - 1


class ServiceError(Exception):
    """A change that cannot be made; the message is safe to show."""


def update_group_settings(
    group: ProtectedGroup, changes: dict[str, Any], *, actor, source: str
) -> ProtectedGroup:
    before = audit.snapshot(group, SETTINGS_FIELDS)
    for field, value in changes.items():
        if field in SETTINGS_FIELDS:
            setattr(group, field, value)
    with transaction.atomic():
        group.save()
        audit.record("group.settings", group, source=source, actor=actor, before=before,
                     after=audit.snapshot(group, SETTINGS_FIELDS), group_id=group.pk)
    return group


def set_group_enabled(
    group: ProtectedGroup, enabled: bool, *, actor, source: str
) -> ProtectedGroup:
    if group.enabled == enabled:
        return group
    with transaction.atomic():
        group.enabled = enabled
        group.save()
        audit.record("group.enabled" if enabled else "group.disabled", group, source=source,
                     actor=actor, before={"enabled": not enabled}, after={"enabled": enabled},
                     group_id=group.pk)
    return group


def queue_member_command(
    group: ProtectedGroup, kind: str, user_id: int, *, actor, source: str
) -> BotCommand:
    """Queues unmute/ban/unban/recheck of `user_id` in `group` for runbot."""
    if kind not in MEMBER_COMMANDS:
        raise ServiceError(f"Unknown command “{kind}”; use one of {', '.join(MEMBER_COMMANDS)}.")
    if not 0 < int(user_id) <= MAX_USER_ID:
        raise ServiceError(f"{user_id} is not a Telegram user id.")
    with transaction.atomic():
        command = BotCommand.objects.create(
            bot_id=group.bot_id,
            kind=MEMBER_COMMANDS[kind],
            # The Telegram id it was asked under: runbot re-checks its rights before running.
            payload={"group_id": group.pk, "chat_id": group.chat_id, "user_id": int(user_id),
                     "actor_telegram_id": telegram_id_of(actor) if actor is not None else None},
            requested_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit.record(f"command.{kind}", command, source=source, actor=actor, group_id=group.pk,
                     after={"user_id": int(user_id), "chat_id": group.chat_id})
    return command


def add_bot(token: str, *, actor, source: str) -> BotInstance:
    """Registers a bot by token (`bots.registration`: getMe, stored encrypted, audited);
    the token is never returned."""
    try:
        return register_bot(token, owner=actor, actor=actor, source=source)
    except TokenRejected as exc:
        raise ServiceError(str(exc)) from None


def set_bot_active(bot: BotInstance, active: bool, *, actor, source: str) -> BotInstance:
    if bot.is_active == active:
        return bot
    with transaction.atomic():
        bot.is_active = active
        bot.save(update_fields=["is_active", "updated_at"])
        audit.record("bot.enabled" if active else "bot.disabled", bot, source=source, actor=actor,
                     before={"is_active": not active}, after={"is_active": active})
    return bot


