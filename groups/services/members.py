"""Changes to one member: unmute, ban, unban, re-check.

The change is decided here (validated, the actor's rights checked, audited)
and carried out by the runbot that runs the group's bot: each call queues one
`BotCommand`, which `bots.command_queue` runs exactly once after checking the
requester's rights again (`groups.rights.command_refusal`).
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from bots import audit
from bots.audit import Actor, AuditAction
from bots.models import BotCommand
from groups.models import ProtectedGroup
from groups.services import checks

# Telegram user ids have at most 52 significant bits.
MAX_USER_ID = 2**52 - 1


def _queue(kind: str, action: AuditAction, group_pk: int, user_id: int,
           actor: Actor) -> BotCommand:
    try:
        user_id = int(user_id)
    except (TypeError, ValueError):
        raise ValidationError({"user_id": _("%(value)s is not a Telegram user id.") % {
            "value": repr(user_id)}}) from None
    if not 0 < user_id <= MAX_USER_ID:
        raise ValidationError({"user_id": _("%(value)s is not a Telegram user id.") % {
            "value": user_id}})
    group = ProtectedGroup.objects.get(pk=group_pk)
    checks.require(actor, kind, group)
    with transaction.atomic():
        command = BotCommand.objects.create(
            bot_id=group.bot_id, kind=kind,
            # The Telegram id it was asked under: runbot re-checks its rights before running.
            payload={"group_id": group.pk, "chat_id": group.chat_id, "user_id": user_id,
                     "actor_telegram_id": actor.telegram_id},
            requested_by=actor.user if actor.user is not None and actor.user.is_authenticated
            else None,
        )
        audit.record(action, command, by=actor, group_id=group.pk,
                     after={"user_id": user_id, "chat_id": group.chat_id})
    return command


def unmute(group_pk: int, user_id: int, *, actor: Actor) -> BotCommand:
    return _queue(BotCommand.Kind.UNMUTE, AuditAction.MEMBER_UNMUTED, group_pk, user_id, actor)


def ban(group_pk: int, user_id: int, *, actor: Actor) -> BotCommand:
    return _queue(BotCommand.Kind.BAN, AuditAction.MEMBER_BANNED, group_pk, user_id, actor)


def unban(group_pk: int, user_id: int, *, actor: Actor) -> BotCommand:
    return _queue(BotCommand.Kind.UNBAN, AuditAction.MEMBER_UNBANNED, group_pk, user_id, actor)


def recheck(group_pk: int, user_id: int, *, actor: Actor) -> BotCommand:
    return _queue(BotCommand.Kind.RECHECK, AuditAction.MEMBER_RECHECKED, group_pk, user_id,
                  actor)


aunmute, aban = sync_to_async(unmute), sync_to_async(ban)

# The entry points that take the change by name (a URL, an API body).
CHANGES: dict[str, Callable[..., BotCommand]] = {
    "unmute": unmute, "ban": ban, "unban": unban, "recheck": recheck,
}
