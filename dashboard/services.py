"""Changes the dashboard and the API make: one function each, audited.

Views and API operations call the gate first (`dashboard.access`), then these.
Group changes are saved through the ORM (`save()`), whose signals make runbot
drop its cached config; nothing here talks to a running bot directly.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.db import IntegrityError, transaction
from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError

from bots import audit, crypto
from bots.application import api_base_url
from bots.models import BotCommand, BotInstance
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


def fetch_bot_identity(token: str) -> dict[str, Any]:
    """getMe against TELEGRAM_API_URL; ServiceError when Telegram says no."""

    async def get_me() -> dict[str, Any]:
        bot = Bot(token, base_url=api_base_url())
        async with bot:
            return (await bot.get_me()).to_dict()

    try:
        return async_to_sync(get_me)()
    except InvalidToken:
        raise ServiceError("Telegram rejected this token. Check it with @BotFather.") from None
    except NetworkError:
        raise ServiceError("Could not reach the Telegram Bot API; try again.") from None
    except TelegramError as exc:
        raise ServiceError(f"Telegram refused the token: {exc.message}") from None


def add_bot(token: str, *, actor, source: str) -> BotInstance:
    """Validates with getMe, stores the token encrypted; the token is never returned."""
    token = token.strip()
    if not crypto.is_token_format(token):
        raise ServiceError("This does not look like a bot token (123456:ABC-…).")
    if BotInstance.objects.filter(token_fingerprint=crypto.token_fingerprint(token)).exists():
        raise ServiceError("This bot is already registered.")
    me = fetch_bot_identity(token)
    if not me.get("is_bot"):
        raise ServiceError("This token does not belong to a bot.")
    bot = BotInstance(username=me.get("username", ""), display_name=me.get("first_name", ""),
                      owner=actor if actor is not None and actor.is_authenticated else None)
    bot.set_token(token)
    try:
        with transaction.atomic():
            bot.save()
            audit.record("bot.added", bot, source=source, actor=actor)
    except IntegrityError:
        raise ServiceError("This bot is already registered.") from None
    return bot


def set_bot_active(bot: BotInstance, active: bool, *, actor, source: str) -> BotInstance:
    if bot.is_active == active:
        return bot
    with transaction.atomic():
        bot.is_active = active
        bot.save(update_fields=["is_active", "updated_at"])
        audit.record("bot.enabled" if active else "bot.disabled", bot, source=source, actor=actor,
                     before={"is_active": not active}, after={"is_active": active})
    return bot


