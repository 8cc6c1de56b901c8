"""Both ends of a bot's update bus inside one runbot process.

* `BusAppender` is the `UpdateConsumer` an intake (Poller, WebhookIntake, or the
  webhook route of any process) hands updates to: `take()` returns once the batch
  is in the bus, so the next getUpdates (or the 200) confirms it. Nothing is
  decided here: the fast path runs where the chat's partition is handled, so a
  chat's updates are decided in order by one process.
* `BusWorker` consumes the partitions this process was given: dedupe, the fast
  path (decided = acknowledged), else PTB's update queue; `done()` acknowledges
  when the handlers finished, except after a database outage, when the update
  stays pending and is queued again later. Every few seconds it renews its lease
  on the entries still in hand (their idle time starts again), claims what a
  dead consumer left pending on its partitions (idle longer than a lease), and
  trims the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from telegram import Update
from telegram.ext import Application, ContextTypes

from bots import metrics
from bots.bus import BusUnavailable, Delivery, GroupAppend, UpdateBus
from bots.updatesource import (
    FastPath,
    OutageRetries,
    RecentIds,
    build_update,
    update_type,
)

logger = structlog.get_logger(__name__)

# Entries pending this long on a consumer are claimed by the partition's owner. A
# live consumer renews the entries it holds every CLAIM_EVERY_SECONDS, so only a
# dead (or cut-off) one's go idle this long; far shorter than the 15 s promise.
CLAIM_IDLE_MS = 5_000
CLAIM_EVERY_SECONDS = 2.0
TRIM_EVERY_SECONDS = 2.0
BACKLOG_EVERY_SECONDS = 0.2
# How long a stopping worker waits for its ack loop to finish the flush in hand.
ACK_LOOP_GRACE_SECONDS = 5.0
# Updates decided between two turns of the event loop (see _take): with the poller in
# the same process, 20 took its getUpdates from 62.0 to 58.8 ms and its append from
# 2.95 to 1.85 ms a batch (medians, two alternating pairs of runs, load average 0.7).
YIELD_EVERY = 20


class BusAppender:
    """An intake's consumer that appends to the bus (see the module docstring)."""

    def __init__(self, bus: UpdateBus, bot_key: str, *, stop: asyncio.Event) -> None:
        self.bus = bus
        self.bot_key = bot_key
        self.stop = stop
        self._backlog = 0
        self._backlog_at = 0.0
        self._single = GroupAppend(bus, bot_key)
        self._refresh: asyncio.Task[None] | None = None  # held: the loop's reference is weak

    @property
    def pending(self) -> int:
        """The bus's backlog for this bot, refreshed at most every 0.2 s."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._backlog_at > BACKLOG_EVERY_SECONDS:
            self._backlog_at = loop.time()
            self._refresh = loop.create_task(self._refresh_backlog())
        return self._backlog

    async def _refresh_backlog(self) -> None:
        with contextlib.suppress(Exception):
            self._backlog = await self.bus.backlog(self.bot_key)

    async def take(self, batch: list[dict[str, Any]], *, polled: bool = False) -> int:
        """In the bus when this returns; raises BusUnavailable (nothing confirmed)."""
        malformed = sum(1 for raw in batch if type(raw.get("update_id")) is not int)
        good = [raw for raw in batch if type(raw.get("update_id")) is int]
        if len(good) == 1 and not polled:
            await self._single.append(good[0])  # a webhook delivery: gathered with others
        else:
            await self.bus.append(self.bot_key, good, polled=polled)
        return malformed


class BusWorker:
    """Consumes this process's partitions of one bot (module docstring)."""

    def __init__(
        self,
        bus: UpdateBus,
        bot_key: str,
        bot_pk: int,
        application: Application,
        *,
        consumer: str,
        stop: asyncio.Event,
        fast_path: FastPath | None = None,
        engine: Any = None,
        on_decided: Callable[[], None] | None = None,
    ) -> None:
        self.bus = bus
        self.bot_key = bot_key
        self.bot_pk = bot_pk
        self.application = application
        self.consumer = consumer
        self.stop = stop
        self.fast_path = fast_path
        self.engine = engine
        self.on_decided = on_decided
        self.partitions: frozenset[int] = frozenset()
        self.log = logger.bind(bot=bot_pk)
        self._in_flight: dict[int, Delivery] = {}
        self.retries = OutageRetries(bot_pk, application, stop, self.log)
        self._acks: list[Delivery] = []
        self._ack_ready = asyncio.Event()
        self._closing = False
        self.recent = RecentIds()

    @property
    def pending(self) -> int:
        return len(self._in_flight)

    def assign(self, partitions: frozenset[int]) -> None:
        """The partitions to read from now on; entries in hand finish either way."""
        if partitions != self.partitions:
            self.log.info("bus.partitions", partitions=sorted(partitions))
        self.partitions = partitions

    async def run(self) -> None:
        """Read, claim and trim until stopped; acknowledgements go out beside it."""
        acks = asyncio.create_task(self._ack_loop())
        loop = asyncio.get_running_loop()
        claimed_at = trimmed_at = 0.0
        failures = 0
        try:
            while not self.stop.is_set():
                partitions = self.partitions
                try:
                    if loop.time() - claimed_at >= CLAIM_EVERY_SECONDS:
                        claimed_at = loop.time()
                        if self._in_flight:
                            await self.bus.renew(self.bot_key, list(self._in_flight.values()),
                                                 self.consumer)
                        await self._claim(partitions)
                    if loop.time() - trimmed_at >= TRIM_EVERY_SECONDS:
                        trimmed_at = loop.time()
                        await self.bus.trim(self.bot_key, partitions)
                    batch = await self.bus.read(self.bot_key, partitions, self.consumer)
                    failures = 0
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception as exc:
                    # Redis away: what it holds waits there; read again shortly.
                    failures += 1
                    delay = min(5.0, 0.25 * 2**failures)
                    self.log.warning("bus.read_failed", error=f"{type(exc).__name__}: {exc}",
                                     retry_in=delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), delay)
                    continue
                await self._take(batch)
        finally:
            # The ack loop ends by itself after the flush in hand. Cancelling it was not
            # enough: redis-py can swallow a cancellation that lands mid-command, and
            # awaiting the task then hung the drain for good.
            self._closing = True
            self._ack_ready.set()
            await asyncio.wait({acks}, timeout=ACK_LOOP_GRACE_SECONDS)
            if not acks.done():
                acks.cancel()
            await self.flush_acks()

    async def _claim(self, partitions: frozenset[int]) -> None:
        if not partitions:
            return
        claimed = await self.bus.claim(self.bot_key, partitions, self.consumer,
                                       min_idle_ms=CLAIM_IDLE_MS)
        # Our own entries waiting for a retry after an outage are idle too: keep them.
        fresh = [d for d in claimed if d.update_id not in self._in_flight]
        if fresh:
            self.log.info("bus.claimed", updates=len(fresh))
            metrics.record_reprocessed(self.bot_pk, "claimed", len(fresh))
            await self._take(fresh, claimed=True)

    async def _take(self, batch: list[Delivery], *, claimed: bool = False) -> None:
        for index, delivery in enumerate(batch):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                # A poller in this process is waiting on the loop, and its next
                # getUpdates is on the critical path; these decisions are not.
                await asyncio.sleep(0)
            raw = delivery.raw
            if not claimed and self.recent.seen(delivery.update_id):
                self._ack(delivery)  # appended twice (a webhook retry): handled once
                continue
            if claimed:
                self.recent.seen(delivery.update_id)
            metrics.observe_update(self.bot_pk, raw)
            if self.fast_path is not None and self.fast_path(self.engine, raw):
                if self.on_decided is not None:
                    self.on_decided()
                metrics.record_update(self.bot_pk, update_type(raw))
                self._ack(delivery)
                continue
            update = build_update(raw, self.application, self.log)
            if update is None:
                self._ack(delivery)  # malformed: another try would fail the same way
                continue
            self._in_flight[update.update_id] = delivery
            await self.application.update_queue.put(update)
        metrics.set_updates_pending(self.bot_pk, len(self._in_flight))

    # --- acknowledging ----------------------------------------------------------------

    def _ack(self, delivery: Delivery) -> None:
        self._acks.append(delivery)
        self._ack_ready.set()

    async def _ack_loop(self) -> None:
        while not self._closing:
            await self._ack_ready.wait()
            self._ack_ready.clear()
            await self.flush_acks()

    async def flush_acks(self) -> None:
        """XACK what was handled; on failure they stay pending (and are claimed again)."""
        acks, self._acks = self._acks, []
        if not acks:
            return
        try:
            await self.bus.ack(self.bot_key, acks)
        except Exception as exc:
            # Redis away: the entries stay pending; a claim hands them out again, and
            # the ledger makes a second handling harmless.
            self.log.warning("bus.ack_failed", updates=len(acks),
                             error=f"{type(exc).__name__}: {exc}")

    async def note_outage(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An error handler: an update that failed on a database outage is not acknowledged."""
        await self.retries.note(update, context)

    def done(self, update: object, finished: bool) -> None:
        """The processor finished (or cancelled) an update."""
        if not isinstance(update, Update):
            return
        if not finished:
            # Cancelled past the drain deadline: left pending for whoever claims it.
            self._in_flight.pop(update.update_id, None)
            return
        if self.retries.retry_if_failed(update):
            return  # unacknowledged meanwhile
        delivery = self._in_flight.pop(update.update_id, None)
        if delivery is not None:
            self._ack(delivery)
        metrics.set_updates_pending(self.bot_pk, len(self._in_flight))

__all__ = ["BusAppender", "BusUnavailable", "BusWorker"]
