"""Owed actions: what Nezuko decided and Telegram did not carry out.

A restriction dropped by a long 429 storm, an unmute that met a 5xx: the
decision stands, so it is written on the member's ledger row
(`GroupMember.owed_action`) and retried with backoff by the engine
(verification/owed.py) until it is done or moot. Carrying the action out
clears it (`ledger_writes.mark_restricted`, `ledger_writes.clear_restriction`).
"""

from __future__ import annotations

import dataclasses
import datetime
import random

from asgiref.sync import sync_to_async
from django.db.models import F
from django.utils import timezone

from bots.spool import storable
from groups.models import GroupMember

FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 300.0
# A restriction under way is written down before the call (see `intend`); the
# retry loop leaves it alone this long: past the longest an enforcement call may
# wait in the rate limiter (bots.ratelimit.Limits.max_wait, 180 s), retries included.
UNDER_WAY_SECONDS = 300.0
UNDER_WAY = "under way"


@dataclasses.dataclass(frozen=True)
class OwedAction:
    group_pk: int
    chat_id: int
    user_id: int
    name: str
    username: str
    action: str
    attempts: int
    restricted_by_nezuko: bool
    status: str


def backoff(attempts: int) -> datetime.timedelta:
    """5 s, 10 s, 20 s … at most 5 minutes, with 10% jitter so retries spread."""
    seconds = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1))
    return datetime.timedelta(seconds=seconds * random.uniform(0.9, 1.1))


def owe(group_pk: int, user_id: int, action: str, *, error: str, name: str = "",
        username: str = "", retry_in: float | None = None) -> None:
    """Write down an action Telegram did not carry out (kept through a database outage:
    it goes through the ledger writer like every other ledger change). The next try
    comes after the backoff, or `retry_in` seconds."""
    from groups.ledger import writer

    writer.write("owe", group_pk=group_pk, user_id=user_id, action=action, error=error,
                 name=name, username=username, retry_in=retry_in)


aowe = sync_to_async(owe)


def intend(group_pk: int, user_id: int, action: str, *, name: str = "",
           username: str = "") -> None:
    """Write-ahead: the action is under way. Until the call's outcome is written
    (done: the ledger settles it; failed: `owe`), a process that restarts sees it
    here and asks Telegram instead of acting twice or not at all."""
    owe(group_pk, user_id, action, error=UNDER_WAY, name=name, username=username,
        retry_in=UNDER_WAY_SECONDS)


aintend = sync_to_async(intend)


def record_owed(*, group_pk: int, user_id: int, action: str, error: str, name: str,
                username: str, at: datetime.datetime, retry_in: float | None = None) -> None:
    """The ledger operation behind `owe`; the tries made so far count in `attempts`."""
    member, _ = GroupMember.objects.get_or_create(
        group_id=group_pk, user_id=user_id,
        defaults={"first_name": storable(name)[:255], "username": storable(username)[:64]},
    )
    again = member.owed_action == action
    attempts = member.owed_attempts if again else 1
    wait = datetime.timedelta(seconds=retry_in) if retry_in is not None else backoff(attempts)
    GroupMember.objects.filter(pk=member.pk).update(
        owed_action=action,
        owed_since=member.owed_since if again else at,
        owed_attempts=attempts,
        owed_retry_at=at + wait,
        owed_error=storable(error)[:255],
    )


def settle(group_pk: int, user_id: int) -> None:
    """Nothing is owed any more for this member (moot, or refused for good)."""
    from groups.ledger import writer

    writer.write("settle_owed", group_pk=group_pk, user_id=user_id)


def record_settled(*, group_pk: int, user_id: int, at: datetime.datetime) -> None:
    """The ledger operation behind `settle`."""
    GroupMember.objects.filter(group_id=group_pk, user_id=user_id).exclude(owed_action="").update(
        owed_action="", owed_since=None, owed_attempts=0, owed_retry_at=None, owed_error=""
    )


asettle = sync_to_async(settle)


def due(bot_id: int, limit: int = 50, now: datetime.datetime | None = None) -> list[OwedAction]:
    """Owed actions of this bot's groups whose retry time has come, oldest first."""
    rows = (
        GroupMember.objects.exclude(owed_action="")
        .filter(group__bot_id=bot_id, owed_retry_at__lte=now or timezone.now())
        .order_by("owed_retry_at")
        .values_list("group_id", "group__chat_id", "user_id", "first_name", "username",
                     "owed_action", "owed_attempts", "restricted_by_nezuko", "status")[:limit]
    )
    return [OwedAction(*row) for row in rows]


adue = sync_to_async(due)


def claim(item: OwedAction) -> bool:
    """About to try again: set the try after this one first, so a failure that
    writes nothing (or a crash) cannot make the row due again at once, and a
    second process that read the same row skips it. False: someone else has it."""
    return bool(
        GroupMember.objects.filter(
            group_id=item.group_pk, user_id=item.user_id, owed_action=item.action,
            owed_attempts=item.attempts,
        ).update(
            owed_attempts=F("owed_attempts") + 1,
            owed_retry_at=timezone.now() + backoff(item.attempts + 1),
        )
    )


aclaim = sync_to_async(claim)


def owed_count(group_pk: int | None = None, *, bot_id: int | None = None) -> int:
    members = GroupMember.objects.exclude(owed_action="")
    if group_pk is not None:
        members = members.filter(group_id=group_pk)
    if bot_id is not None:
        members = members.filter(group__bot_id=bot_id)
    return members.count()


aowed_count = sync_to_async(owed_count)
