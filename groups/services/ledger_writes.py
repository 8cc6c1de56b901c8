"""The member ledger's writes: who is in a group, and whom Nezuko restricted.

Writes go through `groups.ledger.writer`, which keeps them on disk while the
database is away and replays them in order when it answers.

Members seen (the first message of each member after a start, thousands a
second after a restart) are bookkeeping, not enforcement: `sightings` buffers
them and `flush()` writes them as one bulk upsert, once a second, off the hot
path and off the database thread's queue of enforcement writes. A member's
later ledger write (restricted, left, ...) drops their buffered sighting
first, so a sighting never lands on top of something that happened after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog
from asgiref.sync import sync_to_async
from django.utils import timezone

from groups import ledger
from groups.models import GroupMember

logger = structlog.get_logger(__name__)

FLUSH_INTERVAL = 1.0
# Sightings held between flushes; past it, new ones are dropped (and counted): a
# member not noted now is noted at their next sighting after a restart.
MAX_SIGHTINGS = 200_000


class MemberSightings:
    """Members seen, buffered and written as one bulk upsert per flush."""

    def __init__(self, max_buffered: int = MAX_SIGHTINGS) -> None:
        self._rows: dict[tuple[int, int], tuple[str, str, str]] = {}
        self.max_buffered = max_buffered
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, group_pk: int, user_id: int, *, name: str = "", username: str = "") -> None:
        """Note a member seen now (a dict store: safe on the event loop)."""
        key = (group_pk, user_id)
        if key not in self._rows and len(self._rows) >= self.max_buffered:
            self.dropped += 1
            return
        self._rows[key] = (name, username, timezone.now().isoformat())

    def discard(self, group_pk: int, user_id: int) -> None:
        """A later write about this member is coming: the sighting must not follow it."""
        self._rows.pop((group_pk, user_id), None)

    def flush(self) -> int:
        """Write what is buffered (spooled while the database is away); returns rows."""
        with ledger.writer.lock:  # no other ledger write between taking and writing
            rows, self._rows = self._rows, {}
            if rows:
                ledger.writer.write("note_members", rows=[
                    [group_pk, user_id, *fields] for (group_pk, user_id), fields in rows.items()
                ])
        return len(rows)

    async def aflush(self) -> int:
        return await sync_to_async(self.flush)() if self._rows else 0

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `FLUSH_INTERVAL` until `stop`, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=FLUSH_INTERVAL)
            try:
                await self.aflush()
            except Exception:
                logger.exception("sightings.flush_failed")
        await self.aflush()


sightings = MemberSightings()


def _later_write(group_pk: int, user_id: int) -> None:
    sightings.discard(group_pk, user_id)


def note_member(group_pk: int, user_id: int, *, name: str = "", username: str = "",
                status: str = GroupMember.Status.MEMBER) -> None:
    """Remember that this user is in the group (flow 4 needs to know)."""
    _later_write(group_pk, user_id)
    ledger.writer.write("note_member", group_pk=group_pk, user_id=user_id, name=name,
                        username=username, status=status)


anote_member = sync_to_async(note_member)


def mark_restricted(group_pk: int, user_id: int, *, name: str, username: str,
                    reason: str) -> None:
    """The ledger: Nezuko placed this restriction, so Nezuko may lift it.

    Kept through a database outage (`groups.ledger`): nobody Nezuko muted
    ends without this row.
    """
    _later_write(group_pk, user_id)
    ledger.writer.write("mark_restricted", group_pk=group_pk, user_id=user_id, name=name,
                        username=username, reason=reason)


amark_restricted = sync_to_async(mark_restricted)


def set_warning_message(group_pk: int, user_ids: Iterable[int], message_id: int | None) -> None:
    ledger.writer.write("set_warning_message", group_pk=group_pk, user_ids=list(user_ids),
                        message_id=message_id)


aset_warning_message = sync_to_async(set_warning_message)


def clear_restriction(group_pk: int, user_id: int) -> None:
    _later_write(group_pk, user_id)
    ledger.writer.write("clear_restriction", group_pk=group_pk, user_id=user_id)


aclear_restriction = sync_to_async(clear_restriction)


def hand_over_restriction(group_pk: int, user_id: int) -> None:
    """Someone else restricted this member: the restriction is theirs, not Nezuko's."""
    _later_write(group_pk, user_id)
    ledger.writer.write("hand_over_restriction", group_pk=group_pk, user_id=user_id)


ahand_over_restriction = sync_to_async(hand_over_restriction)


def set_member_status(group_pk: int, user_id: int, status: str) -> None:
    _later_write(group_pk, user_id)
    ledger.writer.write("set_member_status", group_pk=group_pk, user_id=user_id, status=status)


aset_member_status = sync_to_async(set_member_status)


def forget_warning(chat_id: int, message_id: int) -> None:
    ledger.writer.write("forget_warning", chat_id=chat_id, message_id=message_id)


aforget_warning = sync_to_async(forget_warning)
