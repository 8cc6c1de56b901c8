"""The member ledger's reads: what the engine asks before it acts."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.utils import timezone

from groups.models import GroupMember


def ledger_entry(group_pk: int, user_id: int) -> GroupMember | None:
    return GroupMember.objects.filter(group_id=group_pk, user_id=user_id).first()


aledger_entry = sync_to_async(ledger_entry)


def known_groups_for_channel(bot_id: int, channel_chat_id: int, user_id: int,
                             *, restricted_only: bool = False) -> list[int]:
    """Chat ids of this bot's protected groups that require the channel and know the user."""
    members = GroupMember.objects.filter(
        user_id=user_id,
        group__bot_id=bot_id,
        group__enabled=True,
        group__links__channel__chat_id=channel_chat_id,
    ).exclude(status__in=[GroupMember.Status.LEFT, GroupMember.Status.KICKED])
    if restricted_only:
        members = members.filter(restricted_by_nezuko=True)
    return list(members.values_list("group__chat_id", flat=True).distinct())


aknown_groups_for_channel = sync_to_async(known_groups_for_channel)


def known_member_ids(group_pk: int, limit: int) -> list[int]:
    """The most recently seen members still in the group."""
    return list(
        GroupMember.objects.filter(group_id=group_pk)
        .exclude(status__in=[GroupMember.Status.LEFT, GroupMember.Status.KICKED])
        .order_by("-last_seen_at")
        .values_list("user_id", flat=True)[:limit]
    )


aknown_member_ids = sync_to_async(known_member_ids)


def overdue_warnings(bot_id: int, limit: int = 200) -> list[tuple[int, int]]:
    """`(chat id, message id)` of warnings past their group's delay.

    Warnings delete themselves on a timer in the process that posted them; this
    finds those a restart left behind (the timer died with the process).
    """
    now = timezone.now()
    rows = (
        GroupMember.objects.filter(group__bot_id=bot_id, warning_message_id__isnull=False,
                                   group__warning_delete_after__gt=0,
                                   restricted_at__isnull=False)
        .values_list("group__chat_id", "warning_message_id", "restricted_at",
                     "group__warning_delete_after")[: limit * 5]
    )
    overdue = {(chat_id, message_id) for chat_id, message_id, at, delay in rows
               if (now - at).total_seconds() > delay}
    return sorted(overdue)[:limit]


aoverdue_warnings = sync_to_async(overdue_warnings)


def restricted_user_ids(group_pk: int) -> list[int]:
    return list(
        GroupMember.objects.filter(group_id=group_pk, restricted_by_nezuko=True).values_list(
            "user_id", flat=True
        )
    )


arestricted_user_ids = sync_to_async(restricted_user_ids)
