"""The member ledger's writes, kept through a database outage.

Every GroupMember write the engine makes (`groups.services.ledger_writes.mark_restricted`,
`clear_restriction`, ...) is one named operation that goes through
`writer.write(op, **args)`:

1. Nothing spooled: write to the database at once, as a plain call would.
2. The database is away (`bots.spool.is_outage`): append the operation to the
   disk spool and return normally, so the handler goes on enforcing.
3. While anything is spooled, later operations are spooled too, so the
   operations on one member land in the order they were made.
4. `writer.run(stop)`, a runtime service, replays the spool in order once the
   database answers; what it cannot write at shutdown stays on disk for the
   next start.

An operation the database refuses for its data (a row that can never be
stored) is set aside: logged once with the reason, counted in
`nezuko_records_set_aside_total{buffer="ledger"}`, never retried, and never
holding the others back. Text is made storable first (`storable`), so a name
with a NUL in it still gets its ledger row.

Replaying after a crash may apply the last batch twice; every operation here
sets values rather than adding to them, so applying it again is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bots import metrics
from bots.spool import Spool, describe, is_outage, storable, write_bisecting
from groups import attribution, owed
from groups.models import GroupMember

logger = structlog.get_logger(__name__)

REPLAY_INTERVAL = 1.0
REPLAY_BATCH = 500
BULK_BATCH = 500

# --- the operations (what a spooled record names) ---------------------------------

# Whatever was owed for a member is settled once their restriction changes hands.
SETTLED = {"owed_action": "", "owed_since": None, "owed_attempts": 0, "owed_retry_at": None,
           "owed_error": ""}


def _note_member(*, group_pk: int, user_id: int, name: str = "", username: str = "",
                 status: str = GroupMember.Status.MEMBER, at: datetime) -> None:
    GroupMember.objects.update_or_create(
        group_id=group_pk,
        user_id=user_id,
        defaults={"first_name": storable(name)[:255], "username": storable(username)[:64],
                  "status": status, "last_seen_at": at},
    )


def _note_members(*, rows: list[list[Any]], at: datetime) -> None:
    """Members seen, many at once (`ledger_writes.MemberSightings`): one upsert of
    `[group_pk, user_id, name, username, seen_at]` rows, as `_note_member` each."""
    GroupMember.objects.bulk_create(
        [
            GroupMember(group_id=group_pk, user_id=user_id, first_name=storable(name)[:255],
                        username=storable(username)[:64], status=GroupMember.Status.MEMBER,
                        last_seen_at=datetime.fromisoformat(seen_at))
            for group_pk, user_id, name, username, seen_at in rows
        ],
        update_conflicts=True,
        unique_fields=["group", "user_id"],
        update_fields=["first_name", "username", "status", "last_seen_at"],
        batch_size=BULK_BATCH,
    )


def _mark_restricted(*, group_pk: int, user_id: int, name: str, username: str, reason: str,
                     at: datetime) -> None:
    GroupMember.objects.update_or_create(
        group_id=group_pk,
        user_id=user_id,
        defaults={
            "first_name": storable(name)[:255],
            "username": storable(username)[:64],
            "status": GroupMember.Status.RESTRICTED,
            "restricted_by_nezuko": True,
            "restricted_at": at,
            "restriction_reason": storable(reason)[:255],
            "last_seen_at": at,
            **SETTLED,
        },
    )


def _set_warning_message(*, group_pk: int, user_ids: list[int], message_id: int | None,
                         at: datetime) -> None:
    GroupMember.objects.filter(group_id=group_pk, user_id__in=user_ids).update(
        warning_message_id=message_id
    )


def _clear_restriction(*, group_pk: int, user_id: int, at: datetime) -> None:
    GroupMember.objects.filter(group_id=group_pk, user_id=user_id).update(
        restricted_by_nezuko=False,
        status=GroupMember.Status.MEMBER,
        restriction_reason="",
        warning_message_id=None,
        **SETTLED,
    )


def _hand_over_restriction(*, group_pk: int, user_id: int, at: datetime) -> None:
    GroupMember.objects.update_or_create(
        group_id=group_pk, user_id=user_id,
        defaults={"status": GroupMember.Status.RESTRICTED, "restricted_by_nezuko": False,
                  "restriction_reason": "restricted by an admin", **SETTLED},
    )


def _set_member_status(*, group_pk: int, user_id: int, status: str, at: datetime) -> None:
    GroupMember.objects.filter(group_id=group_pk, user_id=user_id).update(status=status)


def _forget_warning(*, chat_id: int, message_id: int, at: datetime) -> None:
    GroupMember.objects.filter(group__chat_id=chat_id, warning_message_id=message_id).update(
        warning_message_id=None
    )


OPERATIONS: dict[str, Callable[..., None]] = {
    "note_member": _note_member,
    "note_members": _note_members,
    "mark_restricted": _mark_restricted,
    "set_warning_message": _set_warning_message,
    "clear_restriction": _clear_restriction,
    "hand_over_restriction": _hand_over_restriction,
    "set_member_status": _set_member_status,
    "forget_warning": _forget_warning,
    "owe": owed.record_owed,
    "settle_owed": owed.record_settled,
    **attribution.OPERATIONS,
}


def _apply(record: dict[str, Any]) -> None:
    args = dict(record)
    operation = OPERATIONS[args.pop("op")]
    args["at"] = datetime.fromisoformat(args["at"])
    operation(**args)


def reset_connection() -> None:
    """After an outage the thread's connection is dead: the next write opens a new one."""
    if not connection.in_atomic_block:
        with contextlib.suppress(Exception):
            connection.close()


# --- the writer -------------------------------------------------------------------


class LedgerWriter:
    """Writes ledger operations now, or spools them while the database is away."""

    def __init__(self, directory: str | None = None) -> None:
        self._directory = directory
        self._spool: Spool | None = None
        # One operation at a time, so a direct write never overtakes the replay.
        self.lock = threading.RLock()
        self.set_aside = 0

    @property
    def spool(self) -> Spool:
        if self._spool is None:
            with self.lock:
                if self._spool is None:
                    self._spool = Spool(self._directory or settings.NEZUKO_SPOOL_DIR, "ledger")
        return self._spool

    @property
    def pending(self) -> int:
        return len(self.spool)

    def write(self, op: str, **args: Any) -> None:
        """Apply one operation (see the module docstring); never raises for the database."""
        at = timezone.now()
        with self.lock:
            if not self.spool.pending:
                try:
                    OPERATIONS[op](at=at, **args)
                    return
                except Exception as exc:
                    if not is_outage(exc):
                        self._set_aside({"op": op, **args}, exc)
                        return
                    reset_connection()
                    logger.warning("ledger.database_away_spooling", op=op, error=describe(exc))
            self.spool.append({"op": op, "at": at.isoformat(), **args})

    def replay(self, limit: int = REPLAY_BATCH) -> int:
        """One step: write up to `limit` spooled operations in order; returns how many."""
        with self.lock:
            batch = self.spool.read(limit)
            if not batch:
                return 0

            def write(items: Sequence[tuple[int, Any]]) -> None:
                with transaction.atomic():
                    for _, record in items:
                        if record is not None:
                            _apply(record)

            done = write_bisecting(batch, write, lambda item, exc: self._set_aside(item[1], exc))
            if done:
                self.spool.ack(batch[done - 1][0])
            if done < len(batch):
                reset_connection()
            elif not self.spool.pending:
                logger.info("ledger.replayed", set_aside=self.set_aside)
            return done

    async def areplay(self) -> int:
        return await sync_to_async(self.replay)()

    def _set_aside(self, record: dict[str, Any], exc: BaseException) -> None:
        self.set_aside += 1
        metrics.record_set_aside("ledger")
        logger.error("ledger.set_aside", op=record.get("op"), group_pk=record.get("group_pk"),
                     user_id=record.get("user_id"), reason=describe(exc))

    async def run(self, stop: asyncio.Event) -> None:
        """Replay whatever is spooled (from this run or the last) whenever the database answers.

        At `stop`, one last attempt; what is still spooled then stays on disk.
        """
        while not stop.is_set():
            if await self._replay_all():
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=REPLAY_INTERVAL)
        await self._replay_all(until_done=True)
        if self.pending:
            logger.warning("ledger.left_spooled", pending=self.pending,
                           path=str(self.spool.path))

    async def _replay_all(self, *, until_done: bool = False) -> bool:
        """Replays while there is progress; True when one step made progress."""
        progressed = False
        while self.pending:
            try:
                written = await self.areplay()
            except Exception:
                logger.warning("ledger.replay_failed", exc_info=True)
                return progressed
            if not written:
                return progressed
            progressed = True
            if not until_done:
                return True
        return progressed

    def close_spool(self) -> None:
        """Let go of the spool file; the next use opens the configured directory again."""
        with self.lock:
            if self._spool is not None:
                self._spool.close()
                self._spool = None


writer = LedgerWriter()
