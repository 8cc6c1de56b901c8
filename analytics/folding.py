"""Folding events into rollups, in batches.

The engine publishes each `VerificationEventData` on its event loop; `fold`
only adds it to an in-memory buffer (microseconds, never the database). A
flush, scheduled about a second later on the same loop and run in a worker
thread, turns everything buffered into a handful of upserts. Telegram API
calls are folded the same way through `record_api_call`.

A flush that fails because the database is away (`bots.spool.is_outage`)
keeps its rows for the next flush, which is retried every second while
anything waits. Past `MAX_PENDING` keys in memory, new figures overflow to the
disk spool ("rollups", `bots.spool`) instead of being dropped; at shutdown what
could not be written moves there too, and every flush writes the spool first.
Only when the spool's own bound is hit are figures dropped, counted and
logged. Spooled figures are applied once: the spool is acknowledged in the
same order the rows are committed, so only a crash between the two can add a
batch twice.

Rows the database refuses for their data are found by splitting the batch,
set aside (logged once with the reason, counted in
`nezuko_records_set_aside_total{buffer="rollups"}`) and never block the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection, models, transaction
from django.db.models import Model

from analytics import histogram
from analytics.models import ALL_GROUPS, ApiCallHourly, ApiCallRollup, DecisionRollup, Rollup
from analytics.querysets import SPAN_DAY_TOTAL, TOTAL_OUTCOME
from bots import metrics
from bots.models import BotInstance
from bots.spool import Spool, describe, drain, write_bisecting
from groups.models import ProtectedGroup
from verification.events import VerificationEventData

logger = structlog.get_logger(__name__)

FLUSH_DELAY_SECONDS = 1.0
MAX_PENDING = 50_000
SPOOL_BATCH = 5_000


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclasses.dataclass(slots=True)
class Figures:
    """What one rollup row accumulates."""

    count: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    latency_sum_ms: float = 0.0
    latency_buckets: list[int] = dataclasses.field(default_factory=histogram.empty)
    bot_id: int | None = None

    def add_event(self, event: VerificationEventData) -> None:
        self.count += 1
        self.bot_id = event.bot_id if event.bot_id is not None else self.bot_id
        if event.cache_hit is True:
            self.cache_hits += 1
        elif event.cache_hit is False:
            self.cache_misses += 1
        if event.latency_ms is not None:
            self.latency_sum_ms += event.latency_ms
            self.latency_buckets[histogram.bucket_index(event.latency_ms)] += 1

    def merge(self, other: Figures) -> None:
        self.count += other.count
        self.cache_hits += other.cache_hits
        self.cache_misses += other.cache_misses
        self.latency_sum_ms += other.latency_sum_ms
        histogram.add_into(self.latency_buckets, other.latency_buckets)
        self.bot_id = other.bot_id if other.bot_id is not None else self.bot_id

    def apply_to(self, row: Model) -> None:
        row.count += self.count
        row.cache_hits += self.cache_hits
        row.cache_misses += self.cache_misses
        row.latency_sum_ms += self.latency_sum_ms
        row.latency_buckets = histogram.add_into(
            histogram.add_into(histogram.empty(), row.latency_buckets), self.latency_buckets
        )


@dataclasses.dataclass(slots=True)
class CallFigures:
    count: int = 0
    latency_sum_ms: float = 0.0

    def merge(self, other: CallFigures) -> None:
        self.count += other.count
        self.latency_sum_ms += other.latency_sum_ms

    def apply_to(self, row: ApiCallRollup) -> None:
        row.count += self.count
        row.latency_sum_ms += self.latency_sum_ms


# Keys: ("m", minute, group_id, outcome) for DecisionRollup,
# ("h"|"d", bucket, group_id or ALL_GROUPS, outcome) for Rollup,
# ("api", minute, bot_id, method, outcome) for ApiCallRollup,
# ("apih", hour, bot_id, method, outcome) for ApiCallHourly.
Key = tuple


class RollupBuffer:
    """Thread-safe accumulator with a `flush()` step that returns rows written."""

    def __init__(self, max_pending: int = MAX_PENDING, spool: Spool | None = None) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Key, Any] = {}
        self._max_pending = max_pending
        self._spool = spool
        self._flush_scheduled = False
        self.flush_task: asyncio.Task | None = None
        self.dropped = 0
        self.set_aside = 0

    @property
    def spool(self) -> Spool:
        if self._spool is None:
            self._spool = Spool(settings.NEZUKO_SPOOL_DIR, "rollups")
        return self._spool

    def close_spool(self) -> None:
        """Let go of the spool file; the next use opens the configured directory again."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    # --- adding (cheap, on the engine's loop) ---------------------------------

    def fold(self, event: VerificationEventData) -> None:
        """Subscriber for `verification.events`: buffer now, write soon."""
        moment = event.created_at
        group_id = event.group_id
        keys: list[Key] = [
            ("m", floor_minute(moment), group_id, event.outcome),
            ("h", floor_hour(moment), ALL_GROUPS, event.outcome),
            ("d", floor_day(moment), ALL_GROUPS, event.outcome),
        ]
        if group_id is not None:
            keys += [
                ("h", floor_hour(moment), group_id, event.outcome),
                ("d", floor_day(moment), group_id, event.outcome),
                (SPAN_DAY_TOTAL, floor_day(moment), group_id, TOTAL_OUTCOME),
            ]
        overflow: list[tuple[Key, Any]] = []
        with self._lock:
            for key in keys:
                figures = self._slot(key, Figures, overflow)
                figures.add_event(event)
        self._spill(overflow)
        self._schedule_flush()

    def record_api_call(
        self, bot_id: int | None, method: str, outcome: str, latency_ms: float,
        at: datetime | None = None,
    ) -> None:
        """Hook for the runtime's Telegram call observer: one call made."""
        from django.utils import timezone

        moment = at or timezone.now()
        overflow: list[tuple[Key, Any]] = []
        with self._lock:
            for key in (("api", floor_minute(moment), bot_id, method[:64], outcome[:32]),
                        ("apih", floor_hour(moment), bot_id, method[:64], outcome[:32])):
                figures = self._slot(key, CallFigures, overflow)
                figures.count += 1
                figures.latency_sum_ms += latency_ms
        self._spill(overflow)
        self._schedule_flush()

    def _slot(self, key: Key, factory: Callable[[], Any],
              overflow: list[tuple[Key, Any]]) -> Any:
        """The key's figures in memory, or, past the bound, fresh ones bound for disk."""
        figures = self._pending.get(key)
        if figures is None:
            figures = factory()
            if len(self._pending) >= self._max_pending:
                overflow.append((key, figures))
            else:
                self._pending[key] = figures
        return figures

    def _spill(self, items: list[tuple[Key, Any]]) -> None:
        """To the disk spool; dropped (counted, logged at the next flush) only when it is full."""
        if items:
            kept = self.spool.extend([_encode(key, figures) for key, figures in items])
            self.dropped += len(items) - kept

    def _schedule_flush(self) -> None:
        """Flush about a second later on the running loop, if there is one.

        Without a loop (scripts, sync tests) the caller flushes explicitly.
        """
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush_scheduled = True
        self.flush_task = loop.create_task(self._flush_later())

    async def _flush_later(self) -> int:
        # Waiting lets a burst pile up so it costs one write, not one per event.
        await asyncio.sleep(FLUSH_DELAY_SECONDS)
        written = await self.aflush()
        if self._pending or self.spool.pending:
            # The database is away: try again, without waiting for the next event.
            self._schedule_flush()
        return written

    # --- writing ----------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def aflush(self) -> int:
        self._flush_scheduled = False
        return await sync_to_async(self.flush)()

    def flush(self) -> int:
        """Writes the spool, then everything buffered; returns the number of rows written.

        Stops at a database outage, keeping the rest (memory and disk).
        """
        with self._lock:
            batch, self._pending = self._pending, {}
            dropped, self.dropped = self.dropped, 0
        if dropped:
            logger.error("analytics.rollups_dropped", keys=dropped)
        if not batch and not self.spool.pending:
            return 0
        # Outside a transaction this runs in a worker thread no request cycle
        # cleans up after: drop stale connections before, and ours after.
        standalone = not connection.in_atomic_block
        if standalone:
            close_old_connections()
        try:
            written, outage = self._flush_spool()
            items = list(batch.items())
            done = 0
            if not outage:
                set_aside = self.set_aside
                done = write_bisecting(items, _write_items, self._set_aside)
                written += done - (self.set_aside - set_aside)
            if done < len(items):
                logger.warning("analytics.flush_failed", keys=len(items) - done,
                               spooled=self.spool.pending)
                self._requeue(items[done:])
            return written
        finally:
            if standalone:
                close_old_connections()

    def _flush_spool(self) -> tuple[int, bool]:
        """Rows written from the disk spool, and whether the database was away."""
        return drain(self.spool, _write_items,
                     lambda record, exc: self._set_aside(_decode(record), exc),
                     decode=_decode, batch_size=SPOOL_BATCH)

    def _set_aside(self, item: tuple[Key, Any], exc: BaseException) -> None:
        self.set_aside += 1
        metrics.record_set_aside("rollups")
        logger.error("analytics.rollup_set_aside", key=repr(item[0]), reason=describe(exc))

    def _requeue(self, items: list[tuple[Key, Any]]) -> None:
        overflow: list[tuple[Key, Any]] = []
        with self._lock:
            for key, figures in items:
                self._slot(key, type(figures), overflow).merge(figures)
        self._spill(overflow)

    def close(self) -> int:
        """Shutdown: flush, and move what could not be written to the disk spool."""
        written = self.flush()
        with self._lock:
            left, self._pending = list(self._pending.items()), {}
        if left:
            self._spill(left)
            logger.warning("analytics.rollups_left_spooled", spooled=self.spool.pending)
        return written

    async def aclose(self) -> int:
        self._flush_scheduled = False
        return await sync_to_async(self.close)()


def _encode(key: Key, figures: Any) -> dict[str, Any]:
    return {"k": [key[0], key[1].isoformat(), *key[2:]],
            "t": "c" if isinstance(figures, CallFigures) else "f",
            "f": dataclasses.asdict(figures)}


def _decode(record: dict[str, Any]) -> tuple[Key, Any]:
    tag, moment, *rest = record["k"]
    factory = CallFigures if record["t"] == "c" else Figures
    return (tag, datetime.fromisoformat(moment), *rest), factory(**record["f"])


def _write_items(items: list[tuple[Key, Any]]) -> int:
    """One transaction for these rows; figures of one key are added up first."""
    batch: dict[Key, Any] = {}
    for key, figures in items:
        slot = batch.get(key)
        if slot is None:
            slot = batch[key] = type(figures)()
        slot.merge(figures)
    return _write(_without_deleted(batch))


def _without_deleted(batch: dict[Key, Any]) -> dict[Key, Any]:
    """Drops rows of groups and bots deleted since their events were buffered.

    Minute rows and API-call rows reference them by foreign key; one stale key
    would make every flush fail. Hour and day rows keep plain ids and stay.
    """
    group_ids = {k[2] for k in batch if k[0] == "m" and k[2] is not None}
    bot_ids = {k[2] for k in batch if k[0] in ("api", "apih") and k[2] is not None}
    bot_ids |= {f.bot_id for k, f in batch.items() if k[0] == "m" and f.bot_id is not None}
    live_groups = set(
        ProtectedGroup.objects.filter(pk__in=group_ids).values_list("pk", flat=True)
    ) if group_ids else set()
    live_bots = set(
        BotInstance.objects.filter(pk__in=bot_ids).values_list("pk", flat=True)
    ) if bot_ids else set()
    kept: dict[Key, Any] = {}
    for key, figures in batch.items():
        if key[0] == "m" and key[2] is not None and key[2] not in live_groups:
            continue
        if key[0] == "api" and key[2] is not None and key[2] not in live_bots:
            continue
        if key[0] == "m" and figures.bot_id is not None and figures.bot_id not in live_bots:
            figures.bot_id = None
        kept[key] = figures
    return kept


def _write(batch: dict[Key, Any]) -> int:
    written = 0
    with transaction.atomic():
        written += _upsert_decisions({k: v for k, v in batch.items() if k[0] == "m"})
        written += _upsert_rollups(
            {k: v for k, v in batch.items() if k[0] in ("h", "d", SPAN_DAY_TOTAL)}
        )
        written += _upsert_calls({k: v for k, v in batch.items() if k[0] == "api"},
                                 ApiCallRollup, "api", "minute")
        written += _upsert_calls({k: v for k, v in batch.items() if k[0] == "apih"},
                                 ApiCallHourly, "apih", "hour")
    return written


def _upsert(model: type[Model], batch: dict[Key, Any], existing: dict[Key, Model],
            new_row: Callable[[Key, Any], Model], fields: list[str]) -> int:
    to_update, to_create = [], []
    for key, figures in batch.items():
        row = existing.get(key)
        if row is None:
            row = new_row(key, figures)
            to_create.append(row)
        else:
            to_update.append(row)
        figures.apply_to(row)
    if to_update:
        model.objects.bulk_update(to_update, fields)
    if to_create:
        model.objects.bulk_create(to_create)
    return len(to_update) + len(to_create)


FIGURE_FIELDS = ["count", "cache_hits", "cache_misses", "latency_sum_ms", "latency_buckets"]


def _upsert_decisions(batch: dict[Key, Figures]) -> int:
    if not batch:
        return 0
    minutes = {key[1] for key in batch}
    rows = DecisionRollup.objects.select_for_update().filter(minute__in=minutes)
    existing = {("m", r.minute, r.group_id, r.outcome): r for r in rows}

    def new_row(key: Key, figures: Figures) -> DecisionRollup:
        return DecisionRollup(
            minute=key[1], group_id=key[2], outcome=key[3], bot_id=figures.bot_id,
            latency_buckets=histogram.empty(),
        )

    return _upsert(DecisionRollup, batch, existing, new_row, FIGURE_FIELDS)


def _upsert_rollups(batch: dict[Key, Figures]) -> int:
    if not batch:
        return 0
    buckets = {key[1] for key in batch}
    group_ids = {key[2] for key in batch}
    rows = Rollup.objects.select_for_update().filter(bucket__in=buckets, group_id__in=group_ids)
    existing = {(r.span, r.bucket, r.group_id, r.outcome): r for r in rows}

    def new_row(key: Key, figures: Figures) -> Rollup:
        return Rollup(span=key[0], bucket=key[1], group_id=key[2], outcome=key[3],
                      latency_buckets=histogram.empty())

    return _upsert(Rollup, batch, existing, new_row, FIGURE_FIELDS)


def _upsert_calls(batch: dict[Key, CallFigures], model: type[models.Model], tag: str,
                  time_field: str) -> int:
    """ApiCallRollup ("api", per minute) or ApiCallHourly ("apih", per hour)."""
    if not batch:
        return 0
    times = {key[1] for key in batch}
    rows = model.objects.select_for_update().filter(**{f"{time_field}__in": times})
    existing = {(tag, getattr(r, time_field), r.bot_id, r.method, r.outcome): r for r in rows}

    def new_row(key: Key, figures: CallFigures) -> models.Model:
        return model(**{time_field: key[1]}, bot_id=key[2], method=key[3], outcome=key[4])

    return _upsert(model, batch, existing, new_row, ["count", "latency_sum_ms"])


# The process-wide buffer the app subscribes at start-up.
buffer = RollupBuffer()
fold = buffer.fold
record_api_call = buffer.record_api_call


def flush() -> int:
    """Flushes the process-wide buffer."""
    return buffer.flush()

