"""Pending join requests: the rows behind flow 3 (sync, with async wrappers)."""

from __future__ import annotations

from datetime import timedelta

from asgiref.sync import sync_to_async
from django.utils import timezone

from verification.models import PendingJoinRequest


def remember_request(bot_pk: int, group_pk: int, user_id: int, user_chat_id: int,
                     user_name: str, timeout_seconds: int) -> None:
    PendingJoinRequest.objects.update_or_create(
        group_id=group_pk,
        user_id=user_id,
        defaults={
            "bot_id": bot_pk,
            "user_chat_id": user_chat_id,
            "user_name": user_name[:255],
            "expires_at": timezone.now() + timedelta(seconds=timeout_seconds),
        },
    )


aremember_request = sync_to_async(remember_request)


def set_request_message(group_pk: int, user_id: int, message_id: int) -> None:
    PendingJoinRequest.objects.filter(group_id=group_pk, user_id=user_id).update(
        message_id=message_id
    )


aset_request_message = sync_to_async(set_request_message)


def pending_request(group_pk: int, user_id: int) -> PendingJoinRequest | None:
    return PendingJoinRequest.objects.filter(group_id=group_pk, user_id=user_id).first()


apending_request = sync_to_async(pending_request)


def pending_groups_of_user(bot_pk: int, user_id: int) -> list[int]:
    """Chat ids of the groups where this user waits for approval."""
    return list(
        PendingJoinRequest.objects.filter(bot_id=bot_pk, user_id=user_id).values_list(
            "group__chat_id", flat=True
        )
    )


apending_groups_of_user = sync_to_async(pending_groups_of_user)


def claim_request(group_pk: int, user_id: int) -> PendingJoinRequest | None:
    """Delete and return the request; None if another path already handled it."""
    request = PendingJoinRequest.objects.filter(group_id=group_pk, user_id=user_id).first()
    if request is None:
        return None
    deleted, _ = PendingJoinRequest.objects.filter(pk=request.pk).delete()
    return request if deleted else None


aclaim_request = sync_to_async(claim_request)


def claim_expired(bot_pk: int, limit: int = 100) -> list[tuple[int, int, int, str]]:
    """Claim expired requests: `(group chat id, group pk, user id, user name)` each."""
    expired = list(
        PendingJoinRequest.objects.filter(bot_id=bot_pk, expires_at__lte=timezone.now())
        .select_related("group")[:limit]
    )
    claimed = []
    for request in expired:
        deleted, _ = PendingJoinRequest.objects.filter(pk=request.pk).delete()
        if deleted:
            claimed.append((request.group.chat_id, request.group_id, request.user_id,
                            request.user_name))
    return claimed


aclaim_expired = sync_to_async(claim_expired)
