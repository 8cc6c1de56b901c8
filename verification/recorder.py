"""Writes VerificationEvent rows in batches, off the hot path.

`record()` costs a deque append and the in-process publish to the
subscribers it was built with (runbot's composition root gives it analytics'
folding and the dashboard's live feed). `flush()` writes what is buffered with one
`bulk_create` per batch. Nothing is lost because the database is away:

* while it is away (`bots.spool.is_outage`) the rows stay buffered and the
  next flush tries again;
* past `max_buffered` events in memory, new events overflow to the disk spool
  (`bots.spool`, named "events") instead of being dropped; only when the
  spool's own bound is hit are events dropped, counted in `dropped` and
  `nezuko_events_dropped_total`;
* at shutdown (`aclose`) what could not be written moves to the spool, and the
  next start writes it back (every flush writes the spool first).

A batch refused for its data (a row that can never be stored) is split until
that row is found; it is set aside, logged once with the reason and counted in
`nezuko_records_set_aside_total{buffer="events"}`, and the others are written.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Sequence
from typing import Any

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from bots import metrics
from bots.models import ForgottenPerson
from bots.spool import Spool, describe, drain, storable, write_bisecting
from verification.events import Subscriber, VerificationEventData, publish
from verification.models import VerificationEvent

logger = structlog.get_logger(__name__)

MAX_BUFFERED = 50_000
BATCH_SIZE = 1_000
FLUSH_INTERVAL = 1.0


class EventRecorder:
    def __init__(
        self,
        max_buffered: int = MAX_BUFFERED,
        spool: Spool | None = None,
        subscribers: Sequence[Subscriber] = (),
    ) -> None:
        self._buffer: deque[VerificationEventData] = deque()
        self.subscribers = tuple(subscribers)
        self.max_buffered = max_buffered
        self._spool = spool
        self.dropped = 0
        self.set_aside = 0

    def __len__(self) -> int:
        return len(self._buffer)

    @property
    def spool(self) -> Spool:
        if self._spool is None:
            self._spool = Spool(settings.NEZUKO_SPOOL_DIR, "events")
        return self._spool

    @property
    def spooled(self) -> int:
        return len(self.spool)

    def close_spool(self) -> None:
        """Let go of the spool file; the next use opens the configured directory again."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def record(self, event: VerificationEventData) -> None:
        """Buffer one event for the database and publish it at once."""
        if len(self._buffer) >= self.max_buffered:
            self._overflow([event])
        else:
            self._buffer.append(event)
        publish(event, self.subscribers)

    def _overflow(self, events: Sequence[VerificationEventData]) -> None:
        """Memory is full: to disk; dropped (and counted) only when the disk is full too."""
        kept = self.spool.extend([_to_record(e) for e in events])
        if kept < len(events):
            self.dropped += len(events) - kept
            metrics.record_events_dropped(len(events) - kept)

    def flush(self) -> int:
        """Write the spool, then everything buffered; returns rows written.

        Stops at a database outage, keeping what is left (memory and disk).
        """
        if not connection.in_atomic_block:
            close_old_connections()
        written, outage = self._flush_spool()
        while self._buffer and not outage:
            batch = [self._buffer.popleft() for _ in range(min(BATCH_SIZE, len(self._buffer)))]
            set_aside = self.set_aside
            done = write_bisecting(batch, _write, self._set_aside)
            written += done - (self.set_aside - set_aside)
            if done < len(batch):
                outage = True
                # Put them back in order; what memory cannot hold goes to disk.
                self._buffer.extendleft(reversed(batch[done:]))
                excess = len(self._buffer) - self.max_buffered
                if excess > 0:
                    self._overflow([self._buffer.popleft() for _ in range(excess)])
        if outage:
            if not connection.in_atomic_block:
                connection.close()
            logger.warning("recorder.database_away", buffered=len(self._buffer),
                           spooled=self.spooled, dropped=self.dropped)
        return written

    def _flush_spool(self) -> tuple[int, bool]:
        """Rows written from the disk spool, and whether the database was away."""
        # Events spooled before a /forget are written without the person's name.
        return drain(self.spool, lambda events: _write(_unnamed_if_forgotten(events)),
                     self._set_aside, decode=_from_record, batch_size=BATCH_SIZE)

    def _set_aside(self, event: VerificationEventData | dict[str, Any],
                   exc: BaseException) -> None:
        self.set_aside += 1
        metrics.record_set_aside("events")
        user_id = event.get("user_id") if isinstance(event, dict) else event.user_id
        logger.error("recorder.event_set_aside", user_id=user_id, reason=describe(exc))

    async def aflush(self) -> int:
        return await sync_to_async(self.flush)()

    def close(self) -> int:
        """Shutdown: flush, and move what could not be written to the disk spool."""
        written = self.flush()
        if self._buffer:
            left = [self._buffer.popleft() for _ in range(len(self._buffer))]
            self._overflow(left)
            logger.warning("recorder.left_spooled", spooled=self.spooled, dropped=self.dropped)
        return written

    async def aclose(self) -> int:
        return await sync_to_async(self.close)()

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `FLUSH_INTERVAL` seconds until `stop` is set, then close."""
        if self.spooled:
            await self.aflush()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=FLUSH_INTERVAL)
            except TimeoutError:
                pass
            if self._buffer or self.spool.pending:
                await self.aflush()
        await self.aclose()


def _write(events: Sequence[VerificationEventData]) -> None:
    # bulk_create is one transaction (a savepoint inside one): all or nothing.
    VerificationEvent.objects.bulk_create([_row(e) for e in events])


def _unnamed_if_forgotten(events: list[VerificationEventData]) -> list[VerificationEventData]:
    """Spooled events recorded before their person's /forget, without the name: the
    spool may outlive the process (written at its next start), and another process
    may have answered the /forget meanwhile. One query a spooled batch; events from
    memory are at most a flush old and skip it."""
    named = {e.user_id for e in events if e.user_name}
    forgotten = dict(ForgottenPerson.objects.filter(telegram_id__in=named)
                     .values_list("telegram_id", "forgotten_at")) if named else {}
    if not forgotten:
        return events
    return [dataclasses.replace(e, user_name="")
            if e.user_id in forgotten and e.created_at <= forgotten[e.user_id] else e
            for e in events]


def _to_record(event: VerificationEventData) -> dict[str, Any]:
    return event.as_message()["event"]


def _from_record(record: dict[str, Any]) -> VerificationEventData:
    return VerificationEventData.from_message({"event": record})


def _row(event: VerificationEventData) -> VerificationEvent:
    return VerificationEvent(
        created_at=event.created_at,
        bot_id=event.bot_id,
        group_id=event.group_id,
        chat_id=event.chat_id,
        user_id=event.user_id,
        user_name=storable(event.user_name)[:255],
        outcome=event.outcome,
        missing_channel_ids=list(event.missing_channel_ids),
        latency_ms=event.latency_ms,
        cache_hit=event.cache_hit,
        detail=storable(event.detail)[:255],
    )


# What an engine records into when it was installed without a runtime's recorder
# (tests and benchmarks that build an Engine by hand): it publishes to no one.
recorder = EventRecorder()
