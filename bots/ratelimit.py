"""One rate limiter per bot token, with priorities, as a PTB `BaseRateLimiter`.

Why not PTB's `AIORateLimiter`: it puts every call with a negative chat_id in
the 20-per-minute group bucket (getChatMember on a channel included) and one
429 halts every call of the bot. Telegram publishes limits for messages only,
so this limiter applies:

* an overall budget to every call of the bot (reads and admin actions too),
  spaced evenly so a person's answer never waits behind a burst;
* one message per second per chat, and a sliding window of messages per
  group, to message-sending methods only;
* a `retry_after` to what it was answered for: the chat the call was about,
  or the whole bot when the call named no chat.

Waiting calls sit in one FIFO queue per priority (P0 answers to a person, P1
enforcement, P2 bulk); a free slot goes to the first ready call of the highest
priority, and a call held back by its own chat never blocks the others. Queues
are bounded in size and in waiting time; refused calls raise
`RateLimitDropped` (a `TelegramError`, so callers treat it like Telegram
failing) and are counted in metrics.

The scheduler has no task of its own: every enqueue, grant and timer calls
`_pump()`, which grants what it can and arms one timer for the next moment
something could change.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import math
import re
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from datetime import timedelta
from enum import IntEnum
from typing import Any

from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bots import metrics


class Priority(IntEnum):
    P0 = 0  # answers to a person: callback answers, unmutes, join approvals
    P1 = 1  # enforcement: restrict, delete, warn
    P2 = 2  # bulk: cache warm-up, counts sync


# Methods that answer a person unless the caller says otherwise.
P0_METHODS = frozenset({"answerCallbackQuery", "approveChatJoinRequest", "declineChatJoinRequest"})
# Methods that post or change a message: the per-chat and per-group limits apply.
MESSAGE_METHODS = frozenset(
    {
        "sendMessage", "sendPhoto", "sendDocument", "sendAnimation", "sendVideo",
        "sendAudio", "sendVoice", "sendVideoNote", "sendSticker", "sendMediaGroup",
        "sendPoll", "sendDice", "sendLocation", "sendVenue", "sendContact",
        "forwardMessage", "forwardMessages", "copyMessage", "copyMessages",
    }
)  # fmt: skip

_priority: contextvars.ContextVar[Priority | None] = contextvars.ContextVar(
    "nezuko_call_priority", default=None
)


@contextlib.contextmanager
def priority(level: Priority) -> Iterator[None]:
    """Every Bot API call made inside this block (same task) gets `level`.

    An explicit `rate_limit_args=Priority.P2` on a call still wins.
    """
    token = _priority.set(Priority(level))
    try:
        yield
    finally:
        _priority.reset(token)


_floor: contextvars.ContextVar[Priority | None] = contextvars.ContextVar(
    "nezuko_priority_floor", default=None
)


@contextlib.contextmanager
def person_waiting(level: Priority = Priority.P0) -> Iterator[None]:
    """Every call made inside gets at least `level`, whatever it asks for.

    The runtime wraps the handling of a button press in this: each call made
    for it (the fresh membership check included) is an answer a person waits
    for, even when the code making it says P1.
    """
    token = _floor.set(Priority(level))
    try:
        yield
    finally:
        _floor.reset(token)


_ceiling: contextvars.ContextVar[Priority | None] = contextvars.ContextVar(
    "nezuko_priority_ceiling", default=None
)


@contextlib.contextmanager
def background(level: Priority = Priority.P2) -> Iterator[None]:
    """Every call made inside gets at most `level`, whatever it asks for.

    Scheduled work (the check-up, refreshing membership answers before they
    expire) reuses reads written for people (/doctor's getChat at P0): inside
    this block they wait behind everything a person or enforcement needs. A
    task the runtime boosts for a waiting person still goes first.
    """
    token = _ceiling.set(Priority(level))
    try:
        yield
    finally:
        _ceiling.reset(token)


class RateLimitDropped(TelegramError):
    """The limiter refused a call: its queue was full or it waited too long."""

    def __init__(self, method: str, level: Priority, reason: str) -> None:
        super().__init__(f"Rate limiter dropped {method} ({level.name}): {reason}")
        self.method = method
        self.priority = level
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Limits:
    """Telegram's published limits and the queue bounds.

    `headroom` is the share of the overall budget used, so clock skew and
    network jitter between us and Telegram never turn into a 429; `margin` is
    added to the per-chat interval and the group window for the same reason.
    At 30/s x 0.94 a sliding second sees 31 calls only if ~64 ms of spacing
    collapses in transit; 0.96 (~42 ms) let a loaded machine trip the
    emulator's limit about once in ten 500-join raids.
    """

    overall_per_second: float = 30.0
    headroom: float = 0.94
    chat_interval: float = 1.0
    group_messages: int = 20
    group_window: float = 60.0
    margin: float = 0.05
    max_queue: tuple[int, int, int] = (1_000, 10_000, 10_000)
    max_wait: tuple[float, float, float] = (30.0, 180.0, 600.0)
    max_retries: int = 3
    # A call granted late (the loop's timers round up to whole milliseconds, and a
    # busy loop wakes later still) may take back up to this share of an interval, so
    # lateness does not stretch every interval after it (GCRA's tolerance). Off by
    # default: 0.25 brought a 1,000-join raid from 1.15-1.20x to 1.10-1.13x the bound,
    # but let one 429 through in a 500-join raid at load average 8. Tolerance 1.0
    # with a guard of 28 calls per sliding second gave 1.11x and five 429s at load
    # average 9 (the emulator shares the loop and sees late calls arrive bunched),
    # against 1.16x and none without: catching up is what the 429s cost.
    late_tolerance: float = 0.0

    @property
    def overall_interval(self) -> float:
        return 1.0 / (self.overall_per_second * self.headroom)


@dataclasses.dataclass(slots=True, eq=False)
class _Request:
    priority: Priority
    method: str
    chat: int | str | None
    is_message: bool
    is_group: bool
    deadline: float
    future: asyncio.Future[None]
    task: asyncio.Task[Any] | None = None
    # Monotonic time before which its chat holds it back (the shared limiter's answer).
    not_before: float = 0.0
    rebooks: int = 0  # times the shared limiter booked it again after a late start


def retry_after_seconds(exc: RetryAfter) -> float:
    # `exc.retry_after` warns about its int/timedelta switch; read the timedelta.
    value: Any = getattr(exc, "_retry_after", None)
    if value is None:
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def error_outcome(exc: BaseException) -> str:
    """`BadRequest` -> "bad_request": a bounded label for metrics."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


class TelegramRateLimiter(BaseRateLimiter[int]):
    """See the module docstring. `name` labels this bot's metrics (its pk)."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
        call_observers: Sequence[metrics.CallObserver] = (),
        refusal_observers: Sequence[metrics.RefusalObserver] = (),
    ) -> None:
        self.limits = limits or Limits()
        # The budget this process's own bookkeeping enforces: all of `limits` here;
        # the shared limiter swaps in a per-process share while Redis is away.
        self._local_limits = self.limits
        self.name = name
        # Told of every call's outcome and latency (analytics' rollups), given by runbot.
        self.call_observers = tuple(call_observers)
        # Told of every call Telegram refused (a 403 in a private chat: blocked).
        self.refusal_observers = tuple(refusal_observers)
        self._clock = clock
        self._queues: tuple[deque[_Request], ...] = (deque(), deque(), deque())
        self._dropped = [0, 0, 0]
        # GCRA: the earliest moment the next call may start, overall and per chat.
        self._next_call = 0.0
        self._next_message: dict[int | str, float] = {}
        self._group_sent: dict[int | str, deque[float]] = {}
        self._paused_until: dict[int | str | None, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._boosted: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    # --- Public state, for metrics, heartbeats and tests ------------------------

    def depth(self, level: Priority) -> int:
        return len(self._queues[level])

    def dropped(self, level: Priority) -> int:
        return self._dropped[level]

    def paused_until(self, chat: int | str | None = None) -> float:
        """Monotonic time until which `chat` (None: the whole bot) is paused."""
        return self._paused_until.get(chat, 0.0)

    # --- BaseRateLimiter ---------------------------------------------------------

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for queue in self._queues:
            while queue:
                self._drop(queue.popleft(), "shutdown")

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict | list[dict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict | list[dict]:
        level = self._priority_of(endpoint, data, rate_limit_args)
        chat = data.get("chat_id")
        extra_wait = 0.0
        for attempt in range(self.limits.max_retries + 1):
            await self._admit(level, endpoint, chat, extra_wait, retry=attempt > 0)
            started = time.perf_counter()
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                extra_wait = retry_after_seconds(exc)
                metrics.record_telegram_call(
                    endpoint, "retry_after", time.perf_counter() - started, bot=self.name,
                    observers=self.call_observers,
                )
                self._pause(chat, extra_wait)
                if attempt == self.limits.max_retries:
                    raise
                continue
            except TelegramError as exc:
                metrics.record_telegram_call(
                    endpoint, error_outcome(exc), time.perf_counter() - started, bot=self.name,
                    observers=self.call_observers,
                )
                if self.refusal_observers:
                    metrics.tell_refusal(self.refusal_observers, self.name, chat, exc)
                raise
            metrics.record_telegram_call(
                endpoint, "ok", time.perf_counter() - started, bot=self.name,
                observers=self.call_observers,
            )
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    # --- Admission ---------------------------------------------------------------

    def _priority_of(self, endpoint: str, data: dict[str, Any], explicit: int | None) -> Priority:
        level = self._asked_priority(endpoint, data, explicit)
        ceiling = _ceiling.get()
        if ceiling is not None:
            level = max(level, ceiling)
        floor = _floor.get()
        if asyncio.current_task() in self._boosted:
            floor = Priority.P0
        return level if floor is None else min(level, floor)

    def boost(self, tasks: Iterable[asyncio.Task[Any]]) -> int:
        """Serve these tasks' calls as P0 from now on, the queued ones included.

        A person waits behind them: the update processor keeps one person's
        updates in order, so a button press waits for that person's own join,
        and the join's restriction must not wait behind a raid. Returns how many
        queued calls moved.
        """
        tasks = set(tasks)
        self._boosted.update(tasks)
        moved = 0
        for level in (Priority.P1, Priority.P2):
            for request in [r for r in self._queues[level] if r.task in tasks]:
                self._queues[level].remove(request)
                request.priority = Priority.P0
                self._queues[Priority.P0].append(request)
                moved += 1
        if moved:
            self._pump()
        return moved

    def _asked_priority(
        self, endpoint: str, data: dict[str, Any], explicit: int | None
    ) -> Priority:
        if explicit is not None:
            return Priority(explicit)
        scoped = _priority.get()
        if scoped is not None:
            return scoped
        if endpoint in P0_METHODS or (endpoint == "restrictChatMember" and _is_unmute(data)):
            return Priority.P0
        return Priority.P1

    async def _admit(
        self, level: Priority, method: str, chat: int | str | None, extra_wait: float, retry: bool
    ) -> None:
        """Wait for a slot. Raises RateLimitDropped when the queue is full or time runs out."""
        queue = self._queues[level]
        if len(queue) >= self.limits.max_queue[level]:
            self._count_drop(level, "queue_full")
            raise RateLimitDropped(method, level, "queue full")
        is_message = method in MESSAGE_METHODS
        request = _Request(
            priority=level,
            method=method,
            chat=chat,
            is_message=is_message,
            is_group=is_message and _is_group(chat),
            deadline=self._clock() + extra_wait + self.limits.max_wait[level],
            future=asyncio.get_running_loop().create_future(),
            task=asyncio.current_task(),
        )
        # A retried call was first in line already; it keeps its place.
        if retry:
            queue.appendleft(request)
        else:
            queue.append(request)
        self._report_depth(level)
        queued_at = time.perf_counter()
        self._pump()
        try:
            await request.future
            metrics.record_limiter_wait(level.name, time.perf_counter() - queued_at)
        except asyncio.CancelledError:
            # The caller gave up (a handler was cancelled): free its place.
            with contextlib.suppress(ValueError):
                queue.remove(request)
            raise
        finally:
            self._report_depth(level)

    def _pump(self) -> None:
        """Grant every call that may start now, then arm a timer for the next one."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._clock()
        wake = math.inf
        while True:
            granted, wake = self._grant_one(now)
            if not granted:
                break
        if wake < math.inf:
            loop = asyncio.get_running_loop()
            # Timers run on the loop's clock; translate from ours.
            self._timer = loop.call_at(loop.time() + max(0.0, wake - now), self._pump)

    def _grant_one(self, now: float) -> tuple[bool, float]:
        """Grant the first ready call. Returns (granted, earliest moment to look again)."""
        wake = math.inf
        overall_at = max(self._next_call, self._paused_until.get(None, 0.0))
        for queue in self._queues:
            if not queue:
                continue
            for request in list(queue):
                if request.future.done():
                    # Its caller was cancelled and has not run its cleanup yet.
                    queue.remove(request)
                    continue
                if request.deadline <= now:
                    queue.remove(request)
                    self._drop(request, "timeout")
                    continue
                wake = min(wake, request.deadline)
                if overall_at > now:
                    # Nothing can start before the overall budget allows; deadlines
                    # of later calls are at least as late as this one's.
                    break
                ready_at = self._ready_at(request, now)
                if ready_at <= now:
                    queue.remove(request)
                    self._consume(request, now)
                    request.future.set_result(None)
                    return True, wake
                wake = min(wake, ready_at)
        if overall_at > now:
            wake = min(wake, overall_at)
        return False, wake

    def _ready_at(self, request: _Request, now: float) -> float:
        ready = self._paused_until.get(request.chat, 0.0) if request.chat is not None else 0.0
        if request.is_message:
            ready = max(ready, self._next_message.get(request.chat, 0.0))
            if request.is_group:
                sent = self._group_sent.get(request.chat)
                limits = self._local_limits
                if sent is not None and len(sent) >= limits.group_messages:
                    ready = max(ready, sent[0] + limits.group_window + limits.margin)
        return ready

    def _consume(self, request: _Request, now: float) -> None:
        limits = self._local_limits
        interval = limits.overall_interval
        self._next_call = max(self._next_call, now - interval * limits.late_tolerance) + interval
        if not request.is_message:
            return
        self._next_message[request.chat] = now + limits.chat_interval + limits.margin
        if request.is_group:
            sent = self._group_sent.setdefault(request.chat, deque())
            sent.append(now)
            while len(sent) > limits.group_messages:
                sent.popleft()
        if len(self._next_message) > 10_000:
            self._forget_idle_chats(now)

    def _forget_idle_chats(self, now: float) -> None:
        """Chats whose limits no longer constrain anything cost memory only."""
        window = self._local_limits.group_window + self._local_limits.margin
        self._next_message = {c: t for c, t in self._next_message.items() if t > now}
        self._group_sent = {c: s for c, s in self._group_sent.items() if s and s[-1] + window > now}
        self._paused_until = {c: t for c, t in self._paused_until.items() if t > now}

    def _pause(self, chat: int | str | None, seconds: float) -> None:
        until = self._clock() + seconds
        self._paused_until[chat] = max(self._paused_until.get(chat, 0.0), until)

    def _drop(self, request: _Request, reason: str) -> None:
        self._count_drop(request.priority, reason)
        if not request.future.done():
            request.future.set_exception(
                RateLimitDropped(request.method, request.priority, reason.replace("_", " "))
            )

    def _count_drop(self, level: Priority, reason: str) -> None:
        self._dropped[level] += 1
        metrics.record_dropped(self.name, level.name, reason)

    def _report_depth(self, level: Priority) -> None:
        metrics.set_queue_depth(self.name, level.name, len(self._queues[level]))


def _is_group(chat: int | str | None) -> bool:
    """Negative ids are groups (and channels); "@name" is a public group or channel."""
    if isinstance(chat, int):
        return chat < 0
    if isinstance(chat, str):
        return chat.startswith("@") or chat.startswith("-")
    return False


def _is_unmute(data: dict[str, Any]) -> bool:
    permissions = data.get("permissions")
    if permissions is None:
        return False
    if isinstance(permissions, dict):
        return bool(permissions.get("can_send_messages"))
    return bool(getattr(permissions, "can_send_messages", False))
