"""The tenancy gate: the one place that says what a dashboard user may see.

Pages, htmx partials, the websocket subscribe step and the API all call these
helpers. An owner sees the groups they set up (`ProtectedGroup.setup_by_user_id`)
or administer (the cached `GroupAdmin` rows), and the channels, bots, events
and audit entries of those groups. Staff see everything. Anything outside a
user's scope is a 404, never a 403, so ids do not leak whether they exist.

A member of the READ_ONLY_GROUP (staff or not) sees the same but changes nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from bots.models import AuditLog, BotCommand, BotInstance
from groups.models import EnforcedChannel, GroupAdmin, ProtectedGroup
from verification.models import VerificationEvent

READ_ONLY_GROUP = "Dashboard read-only"

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
        raise PermissionDenied("Your role is read-only.")


# --- groups ---------------------------------------------------------------------


def visible_groups(user: User) -> QuerySet[ProtectedGroup]:
    if not (user.is_authenticated and user.is_active):
        return ProtectedGroup.objects.none()
    if sees_everything(user):
        return ProtectedGroup.objects.all()
    telegram_id = telegram_id_of(user)
    if telegram_id is None:
        return ProtectedGroup.objects.none()
    administered = GroupAdmin.objects.filter(user_id=telegram_id).values("group_id")
    return ProtectedGroup.objects.filter(Q(setup_by_user_id=telegram_id) | Q(pk__in=administered))


def visible_group_ids(user: User) -> list[int] | None:
    """The ids analytics scopes to; None means every group (staff)."""
    if sees_everything(user):
        return None
    return list(visible_groups(user).values_list("pk", flat=True))


def get_group_for(user: User, group_id: int | str) -> ProtectedGroup:
    """The group if `user` may see it, else Http404."""
    try:
        return visible_groups(user).select_related("bot").get(pk=int(group_id))
    except (ProtectedGroup.DoesNotExist, ValueError, TypeError):
        raise Http404("No such group.") from None


def get_group_for_change(user: User, group_id: int | str) -> ProtectedGroup:
    group = get_group_for(user, group_id)
    require_change(user)
    return group


# --- channels, bots, events, commands, audit --------------------------------------


def visible_channels(user: User) -> QuerySet[EnforcedChannel]:
    if sees_everything(user):
        return EnforcedChannel.objects.all()
    return EnforcedChannel.objects.filter(groups__in=visible_groups(user)).distinct()


def get_channel_for(user: User, channel_id: int | str) -> EnforcedChannel:
    try:
        return visible_channels(user).get(pk=int(channel_id))
    except (EnforcedChannel.DoesNotExist, ValueError, TypeError):
        raise Http404("No such channel.") from None


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
        raise Http404("No such bot.") from None


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
        raise PermissionDenied("Only the bot's owner or staff can change this bot.")
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
    return AuditLog.objects.filter(Q(group_id__in=group_ids) | Q(actor=user))


def visible_commands(user: User) -> QuerySet[BotCommand]:
    if sees_everything(user):
        return BotCommand.objects.all()
    if not user.is_authenticated:
        return BotCommand.objects.none()
    group_ids = list(visible_groups(user).values_list("pk", flat=True))
    return BotCommand.objects.filter(Q(requested_by=user) | Q(payload__group_id__in=group_ids))


def get_command_for(user: User, command_id: int | str) -> BotCommand:
    try:
        return visible_commands(user).get(pk=int(command_id))
    except (BotCommand.DoesNotExist, ValueError, TypeError):
        raise Http404("No such command.") from None
