"""Runs every active bot of this process, and keeps running them.

`Supervisor.reconcile()` compares the database with what runs here and fixes
the difference: a bot added or re-activated in admin starts, a disabled or
deleted one stops, a re-tokened one restarts with its new token, a crashed one
restarts with exponential backoff, and a token Telegram refuses marks only
that bot FAILED (with the reason in its BotStatus) until the token changes.
A bot runs only while this process holds its lock (`bots.locks`), so several
runbot processes share the bots, one poller per token, and take over from a
process that dies. `run(stop)` repeats reconcile every few seconds until `stop`
is set, then drains every bot, stops the process-wide services and flushes.

On the update bus (`RuntimeOptions.bus`, `bots.bus`) the processes spread the
work instead (`bots.bus_spread`): each registers in Redis, and from the live
set every process computes the same fair assignment of pollers (one per bot,
still under the bot's lock) and of (bot, partition) pairs; a process runs a bot
when it polls it or works one of its partitions, and follows the assignment as
processes join and leave. A killed process's share moves within 15 s.

One bot's life is `bots.botrunner.BotRunner`; what runbot composes (the
engine's `install`, fast path, loops, executors, the apps' extensions,
observers and flushers) is `RuntimeOptions`, built by `nezuko.runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable

import structlog
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from telegram.error import InvalidToken

from bots.botrunner import BotRunner, RuntimeOptions
from bots.bus_spread import BEAT_SECONDS, Membership, assign, consumer_name
from bots.heartbeat import describe_error, is_network_error
from bots.locks import get_locks
from bots.models import BotInstance

__all__ = ["BotRunner", "RuntimeOptions", "Supervisor"]

logger = structlog.get_logger(__name__)

MAX_BACKOFF_SECONDS = 300.0


def load_bots(bot_filter: Callable[[BotInstance], bool] | None) -> list[BotInstance]:
    if not connection.in_atomic_block:
        close_old_connections()
    bots = list(BotInstance.objects.filter(is_active=True).order_by("pk"))
    return [bot for bot in bots if bot_filter is None or bot_filter(bot)]


aload_bots = sync_to_async(load_bots)


@dataclasses.dataclass
class _Backoff:
    failures: int
    retry_at: float


class Supervisor:
    """Reconciles the bots this process runs with the database. See the module docstring."""

    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.locks = options.locks or get_locks()
        self.runners: dict[int, BotRunner] = {}
        self._backoff: dict[int, _Backoff] = {}
        # pk -> fingerprint of a token Telegram refused: not retried until it changes.
        self._refused: dict[int, str] = {}
        self._waiting: set[int] = set()  # bots another process holds the lock of
        self.membership: Membership | None = None
        self.consumer_name = consumer_name()
        redis = getattr(options.bus, "redis", None)
        if redis is not None:
            self.membership = Membership(redis, self.consumer_name,
                                         prefix=getattr(options.bus, "prefix", "nezuko:bus"))
        self._members_changed = asyncio.Event()

    @property
    def refused(self) -> set[int]:
        """Bots (pk) whose token Telegram refused; they wait for a new token."""
        return set(self._refused)

    async def reconcile(self) -> bool:
        """One pass. True when it started, stopped or restarted a bot."""
        if self.options.bus is not None:
            return await self._reconcile_spread()
        changed = await self._reap()
        bots = {bot.pk: bot for bot in await aload_bots(self.options.bot_filter)}
        if self.runners and not await self.locks.still_held():
            logger.warning("supervisor.locks_lost", bots=sorted(self.runners))
            for runner in list(self.runners.values()):
                await self._retire(runner, release=False)
            changed = True
        for pk, runner in list(self.runners.items()):
            bot = bots.get(pk)
            if bot is None or bot.token_fingerprint != runner.fingerprint:
                await self._retire(runner)
                changed = True
        for pk, bot in bots.items():
            if pk in self.runners or self._refused.get(pk) == bot.token_fingerprint:
                continue
            backoff = self._backoff.get(pk)
            if backoff is not None and time.monotonic() < backoff.retry_at:
                continue
            if not await self.locks.acquire(bot.telegram_id):
                # Another runbot process runs it; we take over if it dies.
                if pk not in self._waiting:
                    self._waiting.add(pk)
                    logger.info("bot.lock_busy", bot=pk, username=bot.username)
                continue
            self._waiting.discard(pk)
            self._start(bot)
            changed = True
        return changed

    # --- on the bus -----------------------------------------------------------------

    def shares(self, bots: list[BotInstance]) -> tuple[set[int], dict[int, frozenset[int]]]:
        """This process's share: the bots it polls (pk) and its partitions per bot.

        Nothing until this process has registered once: see `Membership`."""
        members = self.membership.live if self.membership else [self.consumer_name]
        if not members:
            return set(), {}
        partitions = self.options.bus.partitions if self.options.bus else 1
        by_tid = {bot.telegram_id: bot.pk for bot in bots}
        pollers = assign(sorted(by_tid), members)
        pairs = assign([(tid, p) for tid in sorted(by_tid) for p in range(partitions)], members)
        polls = {by_tid[tid] for tid, member in pollers.items() if member == self.consumer_name}
        mine: dict[int, set[int]] = {}
        for (tid, partition), member in pairs.items():
            if member == self.consumer_name:
                mine.setdefault(by_tid[tid], set()).add(partition)
        return polls, {pk: frozenset(parts) for pk, parts in mine.items()}

    async def _reconcile_spread(self) -> bool:
        """One pass on the bus: follow this process's share (see the module docstring)."""
        changed = await self._reap()
        if self.membership is not None and not await self._joined():
            # Started while Redis is away: every pass says so and tries again (so
            # does the membership beat, every 2 s, which wakes this loop when it joins).
            logger.error("bus.not_joined", member=self.consumer_name,
                         hint="Redis (REDIS_URL) does not answer: this process takes no "
                              "bot until it does; NEZUKO_UPDATE_BUS=off runs without the bus")
            return changed
        bots = {bot.pk: bot for bot in await aload_bots(self.options.bot_filter)}
        startable = {
            pk: bot for pk, bot in bots.items()
            if self._refused.get(pk) != bot.token_fingerprint
            and (pk not in self._backoff or time.monotonic() >= self._backoff[pk].retry_at)
        }
        polls, partitions = self.shares(list(startable.values()))
        if any(r.polls for r in self.runners.values()) and not await self.locks.still_held():
            logger.warning("supervisor.locks_lost", bots=sorted(self.runners))
            for runner in [r for r in self.runners.values() if r.polls]:
                await self._retire(runner, release=False)
            changed = True
        for pk, runner in list(self.runners.items()):
            bot = bots.get(pk)
            wanted = pk in polls or pk in partitions
            if (bot is None or bot.token_fingerprint != runner.fingerprint or not wanted
                    or runner.polls != (pk in polls)):
                # A changed poll role restarts the runner: the intake, heartbeat and
                # per-bot loops belong to the one process that polls.
                await self._retire(runner, release=runner.polls)
                changed = True
            else:
                runner.assign(partitions.get(pk, frozenset()))
        for pk, bot in startable.items():
            if pk in self.runners or not (pk in polls or pk in partitions):
                continue
            if pk in polls and not await self.locks.acquire(bot.telegram_id):
                # The previous poller has not let go yet: the next pass tries again.
                if pk not in self._waiting:
                    self._waiting.add(pk)
                    logger.info("bot.lock_busy", bot=pk, username=bot.username)
                continue
            self._waiting.discard(pk)
            self._start(bot, polls=pk in polls, partitions=partitions.get(pk, frozenset()))
            changed = True
        return changed

    async def _joined(self) -> bool:
        """Registered at least once; a first registration is tried here if not yet."""
        assert self.membership is not None
        if not self.membership.joined:
            try:
                await self.membership.beat()
            except Exception as exc:
                logger.warning("bus.membership_failed", error=describe_error(exc))
        return self.membership.joined

    async def _beat_membership(self, stop: asyncio.Event) -> None:
        """Renew this process's registration; wake the reconcile loop when members change."""
        assert self.membership is not None
        while not stop.is_set():
            before = self.membership.live
            try:
                if before != await self.membership.beat():
                    self._members_changed.set()
            except Exception as exc:
                # Redis away: keep the last view; the share is re-computed once it is back.
                logger.warning("bus.membership_failed", error=describe_error(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=BEAT_SECONDS)
        await self.membership.leave()

    def _start(self, bot: BotInstance, *, polls: bool = True,
               partitions: frozenset[int] = frozenset()) -> None:
        self._refused.pop(bot.pk, None)
        runner = BotRunner(bot, self.options, polls=polls, partitions=partitions,
                           consumer_name=self.consumer_name)
        self.runners[bot.pk] = runner
        runner.start()

    async def _reap(self) -> bool:
        """Collect bots whose task ended by itself: refused token, or crash (backoff)."""
        changed = False
        for pk, runner in list(self.runners.items()):
            if runner.task is None or not runner.task.done():
                continue
            changed = True
            del self.runners[pk]
            error = None if runner.task.cancelled() else runner.task.exception()
            if isinstance(error, InvalidToken):
                self._refused[pk] = runner.fingerprint
                self._backoff.pop(pk, None)
                if runner.polls:
                    await self.locks.release(runner.telegram_id)
                reason = f"Telegram refused the token (revoked or wrong): {error}"
                runner.log.error("bot.token_refused", error=describe_error(error))
                await runner.heartbeat.failed(reason)
            elif error is not None:
                backoff = self._backoff.get(pk) or _Backoff(0, 0.0)
                backoff.failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0**backoff.failures)
                backoff.retry_at = time.monotonic() + delay
                self._backoff[pk] = backoff
                if is_network_error(error):
                    runner.log.warning("bot.network_error", error=describe_error(error),
                                       failures=backoff.failures, retry_in=delay)
                else:
                    runner.log.error("bot.crashed", retry_in=delay, exc_info=error)
                await runner.heartbeat.failed(error)
            else:
                if runner.polls:  # on the bus, the bot's heartbeat is its poller's
                    await runner.heartbeat.stopped()
                runner.log.info("bot.stopped", updates_handled=runner.heartbeat.updates_handled)
        return changed

    async def _retire(self, runner: BotRunner, *, release: bool = True) -> None:
        """Stop one bot (disabled, deleted, re-tokened, or its lock was lost)."""
        self.runners.pop(runner.pk, None)
        await runner.stop()
        if release:
            await self.locks.release(runner.telegram_id)
        if runner.polls:
            with contextlib.suppress(Exception):
                await runner.heartbeat.stopped()
        runner.log.info("bot.stopped")

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until `stop` is set (or, with `once`, until one pass is done), then drain."""
        services_stop = asyncio.Event()
        services = [
            asyncio.create_task(service(services_stop)) for service in self.options.services
        ]
        membership = None
        if self.membership is not None:
            with contextlib.suppress(Exception):
                await self.membership.beat()  # this process counts from the first pass
            membership = asyncio.create_task(self._beat_membership(services_stop))
        try:
            while not stop.is_set():
                try:
                    await self.reconcile()
                except Exception:
                    # The database blinked: bots keep running, the next pass retries.
                    logger.warning("supervisor.reconcile_failed", exc_info=True)
                if self.options.once:
                    await self._finish_once()
                    break
                await self._wait_for_next_pass(stop)
        finally:
            if membership is not None:
                # Leave first, so the others take this share over while it drains.
                membership.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await membership
                assert self.membership is not None
                await self.membership.leave()
            await self.shutdown()
            services_stop.set()
            await asyncio.gather(*services, return_exceptions=True)
            for flush in self.options.flushers:
                try:
                    await flush()
                except Exception:
                    logger.warning("supervisor.flush_failed", exc_info=True)
            await self.locks.close()

    async def _wait_for_next_pass(self, stop: asyncio.Event) -> None:
        """reconcile_interval, or less when stopping or when processes joined or left."""
        waits = [asyncio.ensure_future(stop.wait()),
                 asyncio.ensure_future(self._members_changed.wait())]
        try:
            await asyncio.wait(waits, timeout=self.options.reconcile_interval,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        self._members_changed.clear()

    async def _finish_once(self) -> None:
        """--once: let each bot take what is pending, then one command pass."""
        runners = list(self.runners.values())
        await asyncio.gather(*(r.task for r in runners if r.task), return_exceptions=True)

    async def shutdown(self) -> None:
        """Drain every bot at once; each write its final heartbeat."""
        runners = list(self.runners.values())
        await asyncio.gather(*(runner.stop() for runner in runners), return_exceptions=True)
        await self._reap()
        for runner in runners:
            self.runners.pop(runner.pk, None)
            if runner.polls:
                await self.locks.release(runner.telegram_id)
