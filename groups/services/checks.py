"""Whether an actor may make a change: the one check every service runs.

Rights follow Telegram (`groups.rights.may`). A command passes the standing
Telegram stated just now (getChatMember); the dashboard, the API and admin
pass none, and the cached admin list (`GroupAdmin`, kept current by the
engine) answers for the person's Telegram id.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from bots.audit import Actor
from groups import rights
from groups.models import GroupAdmin, ProtectedGroup


class Refused(PermissionDenied):
    """The actor may not make this change; the message says why and is safe to show."""


def refusal(actor: Actor, action: str, group: ProtectedGroup) -> str | None:
    """Why `actor` may not do `action` in `group`, or None when they may."""
    if actor.read_only:
        return _("Your role is read-only.")
    if actor.staff:
        return None
    standing = actor.standing
    if standing is None and actor.telegram_id is not None:
        standing = GroupAdmin.objects.filter(group_id=group.pk, user_id=actor.telegram_id).first()
    found = rights.may(action, standing, group_title=group.title or str(group.chat_id))
    return found.message if found is not None else None


def require(actor: Actor, action: str, group: ProtectedGroup) -> None:
    if (reason := refusal(actor, action, group)) is not None:
        raise Refused(reason)
