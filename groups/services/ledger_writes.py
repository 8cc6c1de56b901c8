"""The member ledger's writes: who is in a group, and whom Nezuko restricted.

Writes go through `groups.ledger.writer`, which keeps them on disk while the
database is away and replays them in order when it answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from asgiref.sync import sync_to_async

from groups import ledger
from groups.models import GroupMember


def note_member(group_pk: int, user_id: int, *, name: str = "", username: str = "",
                status: str = GroupMember.Status.MEMBER) -> None:
    """Remember that this user is in the group (flow 4 needs to know)."""
    ledger.writer.write("note_member", group_pk=group_pk, user_id=user_id, name=name,
                        username=username, status=status)


anote_member = sync_to_async(note_member)


def mark_restricted(group_pk: int, user_id: int, *, name: str, username: str,
                    reason: str) -> None:
    """The ledger: Nezuko placed this restriction, so Nezuko may lift it.

    Kept through a database outage (`groups.ledger`): nobody Nezuko muted
    ends without this row.
    """
    ledger.writer.write("mark_restricted", group_pk=group_pk, user_id=user_id, name=name,
                        username=username, reason=reason)


amark_restricted = sync_to_async(mark_restricted)


def set_warning_message(group_pk: int, user_ids: Iterable[int], message_id: int | None) -> None:
    ledger.writer.write("set_warning_message", group_pk=group_pk, user_ids=list(user_ids),
                        message_id=message_id)


aset_warning_message = sync_to_async(set_warning_message)


def clear_restriction(group_pk: int, user_id: int) -> None:
    ledger.writer.write("clear_restriction", group_pk=group_pk, user_id=user_id)


aclear_restriction = sync_to_async(clear_restriction)


def hand_over_restriction(group_pk: int, user_id: int) -> None:
    """Someone else restricted this member: the restriction is theirs, not Nezuko's."""
    ledger.writer.write("hand_over_restriction", group_pk=group_pk, user_id=user_id)


ahand_over_restriction = sync_to_async(hand_over_restriction)


def set_member_status(group_pk: int, user_id: int, status: str) -> None:
    ledger.writer.write("set_member_status", group_pk=group_pk, user_id=user_id, status=status)


aset_member_status = sync_to_async(set_member_status)


def forget_warning(chat_id: int, message_id: int) -> None:
    ledger.writer.write("forget_warning", chat_id=chat_id, message_id=message_id)


aforget_warning = sync_to_async(forget_warning)
