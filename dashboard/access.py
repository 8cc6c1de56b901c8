"""The tenancy gate: the one place that says what a dashboard user may see and do.

Pages, htmx partials, the websocket and the API all call these helpers. Rights
follow Telegram: a person sees a group while they are its creator or one of its
administrators now (the cached `GroupAdmin` list, which the engine refreshes
and updates at once on a demotion), and each change needs the matching
Telegram right there (`groups.rights.may`). Having set a group up grants
nothing. Staff see and may do everything. Anything outside a user's scope is a
404, never a 403, so ids do not leak whether they exist; a visible group where
the person lacks the right for an action is a 403 naming the missing right.

A member of the READ_ONLY_GROUP (staff or not) sees the same but changes nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from bots.models import AuditLog, BotCommand, BotInstance
from groups import rights
from groups.models import EnforcedChannel, GroupAdmin, ProtectedGroup
from verification.models import VerificationEvent

READ_ONLY_GROUP = "Dashboard read-only"
MAX_PK = 2**63 - 1  # a database id is a signed 64-bit integer

User = AbstractBaseUser | AnonymousUser


def telegram_id_of(user: User) -> int | None:
    account = getattr(user, "telegram", None) if user.is_authenticated else None
    return account.telegram_id if account is not None else None


def sees_everything(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def can_change(user: User) -> bool:
    """False for anonymous users and for the read-only role."""
    if not (user.is_authenticated and user.is_active):
        return False
    return not user.groups.filter(name=READ_ONLY_GROUP).exists()


def require_change(user: User) -> None:
    if not can_change(user):
        raise PermissionDenied(_("Your role is read-only."))


# --- groups ---------------------------------------------------------------------


def admin_rows(user: User) -> QuerySet[GroupAdmin]:
    """The user's rows in the cached admin lists: the one source of who sees what."""
    if not (user.is_authenticated and user.is_active):
        return GroupAdmin.objects.none()
    telegram_id = telegram_id_of(user)
    if telegram_id is None:
        return GroupAdmin.objects.none()
    return GroupAdmin.objects.filter(user_id=telegram_id)


def visible_groups(user: User) -> QuerySet[ProtectedGroup]:
    if not (user.is_authenticated and user.is_active):
        return ProtectedGroup.objects.none()
    if sees_everything(user):
        return ProtectedGroup.objects.all()
    return ProtectedGroup.objects.filter(pk__in=admin_rows(user).values("group_id"))


def visible_group_ids(user: User) -> list[int] | None:
    """The ids analytics scopes to; None means every group (staff)."""
    if sees_everything(user):
        return None
    return list(visible_groups(user).values_list("pk", flat=True))


def get_group_for(user: User, group_id: int | str) -> ProtectedGroup:
    """The group if `user` may see it, else Http404.

    For a non-staff user the group comes with their admin row (one query), which
    `refusal_for` then reads instead of asking again.
    """
    try:
        pk = int(group_id)
    except (ValueError, TypeError):
        raise Http404(_("No such group.")) from None
    if not 0 < pk <= MAX_PK:
        # SQLite raises OverflowError past 64 bits: no such row, not a 500.
        raise Http404(_("No such group."))
    if sees_everything(user):
        group = ProtectedGroup.objects.select_related("bot").filter(pk=pk).first()
    else:
        admin = admin_rows(user).select_related("group__bot").filter(group_id=pk).first()
        group = admin.group if admin is not None else None
        if group is not None:
            group.viewer_admin = (user.pk, admin)
    if group is None:
        raise Http404(_("No such group."))
    return group


def get_group_for_change(user: User, group_id: int | str, action: str = "settings"
                         ) -> ProtectedGroup:
    """The group if `user` may do `action` in it: Http404 outside their scope,
    PermissionDenied (naming the missing Telegram right) inside it."""
    group = get_group_for(user, group_id)
    require_change(user)
    require_right(user, group, action)
    return group


def refusal_for(user: User, group: ProtectedGroup, action: str) -> rights.Refusal | None:
    """Why `user` may not do `action` in `group` (None: they may)."""
    if sees_everything(user):
        return None
    cached = getattr(group, "viewer_admin", None)
    if cached is not None and cached[0] == user.pk:
        admin = cached[1]
    else:
        admin = admin_rows(user).filter(group=group).first()
    return rights.may(action, admin, group_title=group.title or str(group.chat_id))


def require_right(user: User, group: ProtectedGroup, action: str) -> None:
    if (refusal := refusal_for(user, group, action)) is not None:
        raise PermissionDenied(refusal.message)


# --- channels, bots, events, commands, audit --------------------------------------


def visible_channels(user: User) -> QuerySet[EnforcedChannel]:
    if sees_everything(user):
        return EnforcedChannel.objects.all()
    return EnforcedChannel.objects.filter(groups__in=visible_groups(user)).distinct()


def get_channel_for(user: User, channel_id: int | str) -> EnforcedChannel:
    try:
        return visible_channels(user).get(pk=int(channel_id))
    except (EnforcedChannel.DoesNotExist, ValueError, TypeError):
        raise Http404(_("No such channel.")) from None


def visible_bots(user: User) -> QuerySet[BotInstance]:
    if sees_everything(user):
        return BotInstance.objects.all()
    if not user.is_authenticated:
        return BotInstance.objects.none()
    used = visible_groups(user).values("bot_id")
    return BotInstance.objects.filter(Q(pk__in=used) | Q(owner=user)).distinct()


def get_bot_for(user: User, bot_id: int | str) -> BotInstance:
    try:
        return visible_bots(user).get(pk=int(bot_id))
    except (BotInstance.DoesNotExist, ValueError, TypeError):
        raise Http404(_("No such bot.")) from None


def owned_bot_ids(user: User) -> list[int] | None:
    """Bots whose own figures (API calls, errors) this user may see; None: all (staff).

    One bot usually serves many owners' groups, so seeing a bot's status is not
    the same as owning it: only the person who added it (or staff) gets its
    call statistics, its last error and the right to switch it off.
    """
    if sees_everything(user):
        return None
    if not user.is_authenticated:
        return []
    return list(BotInstance.objects.filter(owner=user).values_list("pk", flat=True))


def get_bot_for_change(user: User, bot_id: int | str) -> BotInstance:
    """404 outside the user's bots; 403 for a bot they use but did not add."""
    bot = get_bot_for(user, bot_id)
    require_change(user)
    owned = owned_bot_ids(user)
    if owned is not None and bot.pk not in owned:
        raise PermissionDenied(_("Only the bot's owner or staff can change this bot."))
    return bot


def visible_events(user: User) -> QuerySet[VerificationEvent]:
    if sees_everything(user):
        return VerificationEvent.objects.all()
    return VerificationEvent.objects.filter(group__in=visible_groups(user))


def visible_audit(user: User) -> QuerySet[AuditLog]:
    if sees_everything(user):
        return AuditLog.objects.all()
    if not user.is_authenticated:
        return AuditLog.objects.none()
    group_ids = visible_groups(user).values("pk")
    # One's own entries about a group one no longer administers go with the group.
    return AuditLog.objects.filter(Q(group_id__in=group_ids) | Q(actor=user, group_id__isnull=True))


def visible_commands(user: User) -> QuerySet[BotCommand]:
    if sees_everything(user):
        return BotCommand.objects.all()
    if not user.is_authenticated:
        return BotCommand.objects.none()
    # By group only: a command one queued in a group one lost is gone from view too.
    group_ids = list(visible_groups(user).values_list("pk", flat=True))
    return BotCommand.objects.filter(payload__group_id__in=group_ids)


def get_command_for(user: User, command_id: int | str) -> BotCommand:
    try:
        return visible_commands(user).get(pk=int(command_id))
    except (BotCommand.DoesNotExist, ValueError, TypeError):
        raise Http404(_("No such command.")) from None
