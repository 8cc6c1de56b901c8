"""The order a bot's updates run in: concurrent across people, in order per person.

PTB hands every update to an update processor; `PerUserUpdateProcessor` is
ours. It keeps one person's updates in order (a join before the message that
follows it), lets different people's updates overlap up to a bound, and serves
button presses first, because a person is watching a spinner while a raid's
joins are merely waiting for the rate limiter. `bots.botrunner` builds one per
bot and is told through `on_done` when an update finished, so it can take the
update out of its journal.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bots.ratelimit import person_waiting


def ordering_key(update: object) -> object:
    """Updates about one person keep their order; everything else may overlap.

    A join must be handled before the message that follows it, and a channel
    leave before the rejoin; those are the same person. Updates without a
    person (channel posts) are ordered per chat.
    """
    if isinstance(update, Update):
        if update.effective_user is not None:
            return ("user", update.effective_user.id)
        if update.effective_chat is not None:
            return ("chat", update.effective_chat.id)
    return ("other", None)


class _Slots:
    """`limit` concurrent holders; waiters served by (urgent first, then arrival).

    Replaces a FIFO semaphore, which serves updates in the order they *asked*
    for a slot: a person's second update asks only once their first is done,
    so in a raid it went to the back of a queue of hundreds of other joins
    (every slot held by a join waiting for the rate limiter), and an
    "I've joined" press waiting behind it waited as long (~14 s).
    Here a waiter keeps the rank of its update's arrival, and `promote()`
    moves a press's own chain ahead of everyone.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.free = limit
        self._heap: list[list[Any]] = []  # [0 urgent | 1, arrival, future | None (moved)]
        self._waiting: dict[asyncio.Task[Any], list[Any]] = {}
        self.waiting = 0  # waiters not yet served nor cancelled

    async def acquire(self, arrival: int, *, urgent: bool) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = [0 if urgent else 1, arrival, future]
        heapq.heappush(self._heap, entry)
        self.waiting += 1
        task = asyncio.current_task()
        if task is not None:
            self._waiting[task] = entry
        try:
            await future
        except asyncio.CancelledError:
            if future.cancelled():
                self.waiting -= 1  # never served; its heap entry is skipped when popped
            else:
                self.release()  # served, then cancelled before it could run: pass it on
            raise
        finally:
            if task is not None:
                self._waiting.pop(task, None)

    def release(self) -> None:
        while self._heap:
            future = heapq.heappop(self._heap)[2]
            if future is not None and not future.done():
                self.waiting -= 1
                future.set_result(None)  # the slot changes hands; `free` unchanged
                return
        self.free += 1

    def promote(self, tasks: Iterable[asyncio.Task[Any]]) -> None:
        """These waiters go first (a person is waiting for them)."""
        for task in tasks:
            entry = self._waiting.get(task)
            if entry is None or entry[0] == 0 or entry[2] is None:
                continue
            moved = [0, entry[1], entry[2]]
            entry[2] = None  # the old place is skipped when popped
            heapq.heappush(self._heap, moved)
            self._waiting[task] = moved


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across people, in order for each person.

    With strict sequential processing a raid of joins queues every other
    update (an "I've joined" press included) behind it, whatever the rate
    limiter's priorities say. Here each update waits only for the previous
    update with the same `ordering_key`, then for one of
    `max_concurrent_updates` slots: a chain of waiting updates holds no slot.

    Slots go to button presses and to the updates a press waits for first,
    then in the order updates arrived (not the order they asked for a slot):
    a person's later update never queues behind a raid that arrived after it.
    """

    def __init__(
        self,
        max_concurrent_updates: int = 512,
        on_done: Callable[[object, bool], None] | None = None,
    ) -> None:
        """`on_done(update, finished)` runs after each update; False: cancelled first."""
        super().__init__(max_concurrent_updates)
        self.on_done = on_done
        # on_blocked(tasks): a button press waits for these (the presser's earlier
        # updates); the supervisor hands them to the rate limiter's boost().
        self.on_blocked: Callable[[set[asyncio.Task[Any]]], object] | None = None
        self._chains: dict[object, set[asyncio.Task[Any]]] = {}
        self._tails: dict[object, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slots = _Slots(max_concurrent_updates)
        # Tasks a waiting press depends on: urgent when they ask for a slot.
        self._urgent: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._arrivals = itertools.count()
        self.pending = 0

    @property
    def current_concurrent_updates(self) -> int:
        return self._slots.limit - self._slots.free

    def cancel_all(self) -> int:
        """Cancel every update still waiting or running (a drain past its deadline)."""
        for task in self._tasks:
            task.cancel()
        return len(self._tasks)

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = ordering_key(update)
        arrival = next(self._arrivals)
        previous = self._tails.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = mine
        self.pending += 1
        started = False
        task = asyncio.current_task()
        chain = self._chains.setdefault(key, set())
        press = _is_press(update)
        if previous is not None and press:
            ahead = set(chain)
            self._urgent.update(ahead)
            self._slots.promote(ahead)
            if self.on_blocked is not None:
                self.on_blocked(ahead)
        if task is not None:
            self._tasks.add(task)
            chain.add(task)
        finished = False
        try:
            if previous is not None:
                # Shielded: cancelling this update must not cancel its predecessor's marker.
                await asyncio.shield(previous)
            await self._slots.acquire(arrival, urgent=press or task in self._urgent)
            try:
                started = True
                await self.do_process_update(update, coroutine)
            finally:
                self._slots.release()
            finished = True
        finally:
            self._tasks.discard(task)
            chain.discard(task)
            if not chain and self._chains.get(key) is chain:
                del self._chains[key]
            if self.on_done is not None:
                self.on_done(update, finished)
            if not started and hasattr(coroutine, "close"):
                coroutine.close()  # cancelled while waiting: never awaited, say so quietly
            self.pending -= 1
            if not mine.done():
                mine.set_result(None)
            if self._tails.get(key) is mine:
                del self._tails[key]

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if isinstance(update, Update) and update.callback_query is not None:
            # Someone pressed a button and is watching a spinner: every call made
            # for it jumps the enforcement queue (bots.ratelimit.person_waiting).
            with person_waiting():
                await coroutine
        else:
            await coroutine

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def _is_press(update: object) -> bool:
    return isinstance(update, Update) and update.callback_query is not None
