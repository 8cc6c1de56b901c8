"""Writes VerificationEvent rows in batches, off the hot path.

`record()` costs a deque append and the in-process publish (analytics and the
dashboard subscribe there). `flush()` writes what is buffered with one
`bulk_create`; if the database is down the rows stay buffered and the next
flush tries again. The buffer is bounded: when it is full the oldest events
are dropped and counted in `dropped`, which the flush log line reports.
"""

from __future__ import annotations

import asyncio
from collections import deque

import structlog
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from bots import metrics
from verification.events import VerificationEventData, publish
from verification.models import VerificationEvent

logger = structlog.get_logger(__name__)

MAX_BUFFERED = 50_000
BATCH_SIZE = 1_000
FLUSH_INTERVAL = 1.0


class EventRecorder:
    def __init__(self, max_buffered: int = MAX_BUFFERED) -> None:
        self._buffer: deque[VerificationEventData] = deque()
        self.max_buffered = max_buffered
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._buffer)

    def record(self, event: VerificationEventData) -> None:
        """Buffer one event for the database and publish it at once."""
        if len(self._buffer) >= self.max_buffered:
            self._buffer.popleft()
            self.dropped += 1
            metrics.record_events_dropped(1)
        self._buffer.append(event)
        publish(event)

    def flush(self) -> int:
        """Write everything buffered; returns rows written (0 on a database error)."""
        written = 0
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(BATCH_SIZE, len(self._buffer)))]
            try:
                if not connection.in_atomic_block:
                    close_old_connections()
                VerificationEvent.objects.bulk_create([_row(e) for e in batch])
            except Exception:
                # Put them back in order, keeping the bound.
                self._buffer.extendleft(reversed(batch))
                while len(self._buffer) > self.max_buffered:
                    self._buffer.popleft()
                    self.dropped += 1
                    metrics.record_events_dropped(1)
                logger.warning("recorder.flush_failed", buffered=len(self._buffer),
                               dropped=self.dropped, exc_info=True)
                break
            written += len(batch)
        return written

    async def aflush(self) -> int:
        return await sync_to_async(self.flush)()

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `FLUSH_INTERVAL` seconds until `stop` is set, then once more."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=FLUSH_INTERVAL)
            except TimeoutError:
                pass
            if self._buffer:
                await self.aflush()
        await self.aflush()


def _row(event: VerificationEventData) -> VerificationEvent:
    return VerificationEvent(
        created_at=event.created_at,
        bot_id=event.bot_id,
        group_id=event.group_id,
        chat_id=event.chat_id,
        user_id=event.user_id,
        user_name=event.user_name[:255],
        outcome=event.outcome,
        missing_channel_ids=list(event.missing_channel_ids),
        latency_ms=event.latency_ms,
        cache_hit=event.cache_hit,
        detail=event.detail[:255],
    )


recorder = EventRecorder()
