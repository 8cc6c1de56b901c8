"""The cached admin list of a group (getChatAdministrators)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from groups import ledger
from groups.config import bump_version, configs
from groups.models import GroupAdmin, ProtectedGroup

ADMIN_FIELDS = ("user_id", "username", "first_name", "is_creator", "is_anonymous",
                "can_restrict_members")


def replace_admins(group_pk: int, admins: list[dict]) -> None:
    """Store the group's admin list as fetched (getChatAdministrators).

    Every active group does this every few minutes and the list rarely changes:
    an unchanged list only moves the timestamps and drops this group's cached
    configuration, instead of every group's in every process.
    """
    now = timezone.now()
    admins = [{**a, "first_name": ledger.storable(a["first_name"]),
               "username": ledger.storable(a["username"])} for a in admins]
    stored = set(GroupAdmin.objects.filter(group_id=group_pk).values_list(*ADMIN_FIELDS))
    if stored == {tuple(a[f] for f in ADMIN_FIELDS) for a in admins}:
        with transaction.atomic():
            GroupAdmin.objects.filter(group_id=group_pk).update(refreshed_at=now)
            ProtectedGroup.objects.filter(pk=group_pk).update(admins_refreshed_at=now)
        key = ProtectedGroup.objects.filter(pk=group_pk).values_list("bot_id", "chat_id").first()
        if key is not None:
            configs.drop(*key)
        return
    with transaction.atomic():
        GroupAdmin.objects.filter(group_id=group_pk).delete()
        GroupAdmin.objects.bulk_create(
            GroupAdmin(group_id=group_pk, refreshed_at=now, **a) for a in admins
        )
        ProtectedGroup.objects.filter(pk=group_pk).update(admins_refreshed_at=now)
    bump_version()


areplace_admins = sync_to_async(replace_admins)
