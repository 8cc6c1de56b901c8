"""The audit trail: one vocabulary of actions, one helper to write a row.

Every domain change (groups.services, bots.registration) and every change made
in Django admin writes one AuditLog row through `record`, naming what happened
with an `AuditAction` (`group.protected`, `member.banned`, …) and who did it
with an `Actor`. The dashboard's audit page and admin show the action's label
and `actor_label`, never a raw account name such as `tg1000000001`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.forms.models import model_to_dict

from bots.models import AuditLog

# Fields that are never copied into the audit trail.
SECRET_FIELDS = {"encrypted_token", "token_fingerprint", "password", "token_hash"}


class AuditAction(models.TextChoices):
    """What an audit row records: `<resource>.<past participle>`, one name per change."""

    GROUP_PROTECTED = "group.protected", "Protection set up"
    GROUP_UNPROTECTED = "group.unprotected", "Channel no longer required"
    GROUP_SETTINGS_CHANGED = "group.settings_changed", "Settings changed"
    GROUP_ENABLED = "group.enabled", "Protection enabled"
    GROUP_DISABLED = "group.disabled", "Protection disabled"
    MEMBER_UNMUTED = "member.unmuted", "Member unmuted"
    MEMBER_BANNED = "member.banned", "Member banned"
    MEMBER_UNBANNED = "member.unbanned", "Member unbanned"
    MEMBER_RECHECKED = "member.rechecked", "Member re-checked"
    BOT_REGISTERED = "bot.registered", "Bot registered"
    BOT_RETOKENED = "bot.retokened", "Bot token replaced"
    BOT_ENABLED = "bot.enabled", "Bot enabled"
    BOT_DISABLED = "bot.disabled", "Bot disabled"
    BOT_KEY_ROTATED = "bot.key_rotated", "Bot token re-encrypted"
    COMMAND_QUEUED_AGAIN = "command.queued_again", "Command queued again"
    API_TOKEN_CREATED = "api_token.created", "API token created"
    API_TOKEN_REVOKED = "api_token.revoked", "API token revoked"
    BROADCAST_SENT = "broadcast.sent", "Broadcast sent"
    # Django admin's own add/change/delete of a row no service owns.
    RECORD_ADDED = "record.added", "Added in admin"
    RECORD_CHANGED = "record.changed", "Changed in admin"
    RECORD_DELETED = "record.deleted", "Deleted in admin"


# Names older releases wrote; migration bots/0003 rewrites stored rows with this.
LEGACY_ACTIONS = {
    "protect": AuditAction.GROUP_PROTECTED,
    "unlink_channel": AuditAction.GROUP_UNPROTECTED,
    "unprotect": AuditAction.GROUP_DISABLED,
    "settings": AuditAction.GROUP_SETTINGS_CHANGED,
    "group.settings": AuditAction.GROUP_SETTINGS_CHANGED,
    "enable": AuditAction.GROUP_ENABLED,
    "disable": AuditAction.GROUP_DISABLED,
    "command.unmute": AuditAction.MEMBER_UNMUTED,
    "command.ban": AuditAction.MEMBER_BANNED,
    "command.unban": AuditAction.MEMBER_UNBANNED,
    "command.recheck": AuditAction.MEMBER_RECHECKED,
    "bot.added": AuditAction.BOT_REGISTERED,
    "activate": AuditAction.BOT_ENABLED,
    "deactivate": AuditAction.BOT_DISABLED,
    "rotate_key": AuditAction.BOT_KEY_ROTATED,
    "queue_again": AuditAction.COMMAND_QUEUED_AGAIN,
    "revoke": AuditAction.API_TOKEN_REVOKED,
    "add": AuditAction.RECORD_ADDED,
    "change": AuditAction.RECORD_CHANGED,
    "delete": AuditAction.RECORD_DELETED,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, as every entry point describes them to a service.

    source: where (AuditLog.Source). name: how a person reads it ("Ann").
    user: the Django account (dashboard, API, admin), None in Telegram.
    telegram_id: the person in Telegram, when known; their rights follow it.
    staff: staff and the system may change everything.
    read_only: an account in the dashboard's read-only role changes nothing.
    standing: the person's admin standing as Telegram stated it just now (a
        command checks getChatMember); None means "read the cached admin list".
    """

    source: str
    name: str = ""
    user: Any = None
    telegram_id: int | None = None
    staff: bool = False
    read_only: bool = False
    standing: Any = None

    @classmethod
    def system(cls) -> Actor:
        return cls(AuditLog.Source.SYSTEM, staff=True)


def snapshot(instance: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """A JSON-safe dict of an instance's editable fields, secrets left out."""
    data = model_to_dict(instance, fields=fields)
    return {
        key: value if isinstance(value, str | int | float | bool | type(None) | list | dict)
        else str(value)
        for key, value in data.items()
        if key not in SECRET_FIELDS
    }


def changed(before: dict | None, after: dict | None) -> tuple[dict, dict]:
    """Only the keys whose values differ, so entries stay readable."""
    before, after = before or {}, after or {}
    keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def record(
    action: AuditAction | str,
    obj: models.Model | None = None,
    *,
    by: Actor | None = None,
    source: str = "",
    actor=None,
    actor_telegram_id: int | None = None,
    actor_name: str = "",
    before: dict | None = None,
    after: dict | None = None,
    group_id: int | None = None,
    object_type: str = "",
) -> AuditLog:
    """One row. `action` must be in the vocabulary (ValueError otherwise), so a
    new name cannot slip in beside an old one."""
    if action not in AuditAction.values:
        raise ValueError(f"{action!r} is not an AuditAction.")
    if by is not None:
        source, actor = by.source, by.user
        actor_telegram_id, actor_name = by.telegram_id, by.name
    if before is not None and after is not None:
        before, after = changed(before, after)
    if actor is not None and not actor_name:
        actor_name = actor.get_username()
    return AuditLog.objects.create(
        source=source,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_telegram_id=actor_telegram_id,
        actor_name=actor_name[:255],
        action=str(action),
        object_type=object_type or (obj._meta.model_name if obj is not None else ""),
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:255] if obj is not None else "",
        group_id=group_id,
        before=before,
        after=after,
    )


# --- reading the trail -------------------------------------------------------------


def action_label(action: str) -> str:
    """The human label; a name from before the vocabulary reads as its successor's."""
    name = LEGACY_ACTIONS.get(action, action)
    try:
        return AuditAction(name).label
    except ValueError:
        return action


def actor_label(entry: AuditLog) -> str:
    """"Ann (Telegram)" for a Telegram person, the username for staff, "system" for none.

    Rows written before actors carried their Telegram name (a dashboard user's
    account is called `tg<id>`) read the name from the linked Telegram account.
    """
    if entry.actor_telegram_id is not None:
        return f"{entry.actor_name or entry.actor_telegram_id} (Telegram)"
    name = telegram_name(entry.actor) if entry.actor_id else ""
    if name:
        return f"{name} (Telegram)"
    return entry.actor_name or "system"


def telegram_name(user: Any) -> str:
    """How Telegram shows the person a dashboard account belongs to; "" without one."""
    try:
        account = user.telegram
    except (AttributeError, ObjectDoesNotExist):
        return ""
    return (account.first_name or user.first_name
            or (f"@{account.username}" if account.username else str(account.telegram_id)))
