"""One rate limit per bot token across processes: the priority limiter on Redis.

Every process serving a token keeps its own priority queues (the same
`TelegramRateLimiter` rules: P0 before P1 before P2, a call held back by its
chat never blocks the others), but a call starts only once Redis booked it a
slot. One Lua script does the booking atomically on Redis's own clock
(`TIME`), so the processes' clocks never meet:

* the bot's overall budget is a GCRA: one key holds the earliest moment the
  next call may start, and each booking moves it on by `overall_interval`;
* a message also needs its chat's next free second and, in a group, a free
  place in the last-20-messages window (a capped list of send times);
* a `retry_after` Telegram answered is written to Redis and holds every
  process back.

Why not the `limits` library: it answers "allowed now?" per key, so waiting
callers would poll, nothing could book a slot ahead, and priorities across
processes would need a layer of our own anyway. The script is ~40 lines.

Priorities across processes: a call may book a slot at most
`horizon[priority]` seconds ahead of Redis's clock (P0 1 s, P1 0.25 s, P2
0.02 s). Bulk calls only take a slot that is free now, so while a process
has people or enforcement waiting the overall budget stays booked ahead and
another process's bulk calls wait: a P0 call waits behind at most ~0.25 s of
another process's P1 bookings and never behind P2 ones.

Degraded mode: when Redis does not answer within `redis_timeout`, every
process falls back to its own share of the budget (the overall rate, the
per-group window divided by the number of processes that used the token in
the last `member_ttl` seconds; the per-chat interval multiplied by it) and
pings Redis every `probe_interval` beside the queues (a hanging Redis never
holds them up). Enforcement never stops, and the
processes together stay within the limits. The share still applies for
`settle` seconds after Redis answers again, so a process that already came
back and one that has not noticed yet cannot together overrun the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence

import redis.asyncio as redis_asyncio
import structlog
from redis.exceptions import RedisError

from bots import metrics
from bots.metrics import CallObserver, RefusalObserver
from bots.ratelimit import Limits, Priority, TelegramRateLimiter, _Request

logger = structlog.get_logger(__name__)

# KEYS: 1 overall next-call time, 2 bot pause, 3 chat next-message time,
#       4 group send times (newest first), 5 chat pause, 6 processes using the token
# ARGV: 1 overall interval, 2 horizon, 3 is message, 4 is group, 5 chat interval,
#       6 group messages, 7 group window, 8 this process, 9 member ttl
# Returns {verdict, seconds, processes}: "go" (start in `seconds`), "chat" (this
# chat is busy for `seconds`) or "wait" (ask again in `seconds`). Times travel as
# strings: Lua numbers returned to Redis are truncated to integers.
BOOK_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function num(key) return tonumber(redis.call('GET', key) or '0') end
local function fmt(x) return string.format('%.6f', x) end
local function keep(key, at, seconds)
  redis.call('SET', key, fmt(at), 'PX', math.ceil(seconds * 1000) + 1000)
end
local ttl = tonumber(ARGV[9])
redis.call('ZADD', KEYS[6], now, ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - ttl)
redis.call('EXPIRE', KEYS[6], math.ceil(ttl * 2))
local processes = redis.call('ZCARD', KEYS[6])
local chat_ready = num(KEYS[5])
if ARGV[3] == '1' then
  chat_ready = math.max(chat_ready, num(KEYS[3]))
  if ARGV[4] == '1' and redis.call('LLEN', KEYS[4]) >= tonumber(ARGV[6]) then
    local oldest = tonumber(redis.call('LINDEX', KEYS[4], -1))
    chat_ready = math.max(chat_ready, oldest + tonumber(ARGV[7]))
  end
end
local start = math.max(now, num(KEYS[1]), num(KEYS[2]))
if chat_ready > start then
  return {'chat', fmt(chat_ready - now), processes}
end
local horizon = tonumber(ARGV[2])
if start - now > horizon then
  return {'wait', fmt(start - horizon - now), processes}
end
local interval = tonumber(ARGV[1])
keep(KEYS[1], start + interval, start - now + interval)
if ARGV[3] == '1' then
  local chat_interval = tonumber(ARGV[5])
  keep(KEYS[3], start + chat_interval, start - now + chat_interval)
  if ARGV[4] == '1' then
    redis.call('LPUSH', KEYS[4], fmt(start))
    redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[6]) - 1)
    redis.call('PEXPIRE', KEYS[4], math.ceil((start - now + tonumber(ARGV[7])) * 1000) + 1000)
  end
end
return {'go', fmt(start - now), processes}
"""

# KEYS: 1 pause key. ARGV: 1 seconds. Pauses only ever lengthen.
PAUSE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < until_ then
  local ms = math.ceil(tonumber(ARGV[1]) * 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.6f', until_), 'PX', ms)
end
return 1
"""


@dataclasses.dataclass(frozen=True)
class SharedLimits:
    """How the limiter uses Redis; see the module docstring."""

    horizon: tuple[float, float, float] = (1.0, 0.1, 0.02)
    # A call released later than this after its booked moment books again (see _release).
    late_tolerance: float = 0.025
    max_rebooks: int = 2
    redis_timeout: float = 0.5
    probe_interval: float = 1.0
    settle: float = 2.0
    member_ttl: float = 60.0


def share_of(limits: Limits, processes: int) -> Limits:
    """One process's part of the budget when `processes` share the token."""
    n = max(1, processes)
    return dataclasses.replace(
        limits,
        overall_per_second=limits.overall_per_second / n,
        chat_interval=limits.chat_interval * n,
        group_messages=max(1, limits.group_messages // n),
    )


class SharedRateLimiter(TelegramRateLimiter):
    """A `TelegramRateLimiter` whose slots are booked in Redis under `key` (the bot's id)."""

    def __init__(
        self,
        redis_url: str,
        key: str,
        limits: Limits | None = None,
        *,
        name: str = "",
        shared: SharedLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        call_observers: Sequence[CallObserver] = (),
        refusal_observers: Sequence[RefusalObserver] = (),
    ) -> None:
        super().__init__(limits, name=name, clock=clock, call_observers=call_observers,
                         refusal_observers=refusal_observers)
        self.shared = shared or SharedLimits()
        self._redis = redis_asyncio.Redis.from_url(
            redis_url,
            socket_timeout=self.shared.redis_timeout,
            socket_connect_timeout=self.shared.redis_timeout,
            retry_on_timeout=False,
        )
        self._book = self._redis.register_script(BOOK_SCRIPT)
        self._pause_script = self._redis.register_script(PAUSE_SCRIPT)
        # The braces are a Redis Cluster hash tag: all of one bot's keys on one node.
        self._prefix = f"nezuko:limiter:{{{key}}}:"
        self._member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._processes = 1
        self._redis_down = False
        self._share_until = 0.0
        self._ask_again_at = 0.0
        self._wake: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._releases: set[asyncio.TimerHandle] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._probe: asyncio.Task[None] | None = None

    # --- Public state ------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while this process enforces its own share (Redis away or just back)."""
        return self._redis_down or self._clock() < self._share_until

    @property
    def processes(self) -> int:
        """Processes that used this token recently, as Redis last said."""
        return self._processes

    # --- Lifecycle -----------------------------------------------------------------

    async def shutdown(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        if self._probe is not None:
            self._probe.cancel()
        for handle in self._releases:
            handle.cancel()
        self._releases.clear()
        await super().shutdown()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    # --- Scheduling ------------------------------------------------------------------

    def _pump(self) -> None:
        """Booking needs Redis round trips: one dispatcher task per limiter does it."""
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name=f"nezuko-limiter-{self.name}"
            )

    async def _dispatch(self) -> None:
        assert self._wake is not None
        while any(self._queues):
            self._wake.clear()
            wait = await self._grant_ready()
            if not any(self._queues):
                return
            if wait <= 0:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), None if math.isinf(wait) else wait)

    async def _grant_ready(self) -> float:
        """Book what Redis allows, highest priority first. Returns seconds until the next look."""
        wake = math.inf
        for queue in self._queues:
            for request in list(queue):
                now = self._clock()
                if request.future.done():
                    with contextlib.suppress(ValueError):
                        queue.remove(request)
                    continue
                if request.deadline <= now:
                    queue.remove(request)
                    self._drop(request, "timeout")
                    continue
                wake = min(wake, request.deadline - now)
                if request.not_before > now:
                    wake = min(wake, request.not_before - now)
                    continue
                asked_at = asyncio.get_running_loop().time()
                verdict, seconds = await self._ask(request, now)
                now = self._clock()
                if verdict == "retry":
                    return 0.0
                if verdict == "chat":
                    request.not_before = now + seconds
                    wake = min(wake, seconds)
                    continue
                if verdict == "wait":
                    # The overall budget: every later call (same or lower priority,
                    # so no longer horizon) would be told the same.
                    return min(wake, seconds)
                with contextlib.suppress(ValueError):
                    queue.remove(request)
                self._start_after(request, asked_at + seconds)
        return wake

    async def _ask(self, request: _Request, now: float) -> tuple[str, float]:
        """Redis's verdict; while degraded, the local share must allow the call too."""
        sharing = self.degraded
        if sharing:
            held = self._local_verdict(request, now)
            if held is not None:
                return held
        verdict: tuple[str, float] = ("go", 0.0)  # Redis away: the local share decides
        if self._redis_down:
            # Probed aside, so a hanging Redis never holds the queues up.
            self._probe_soon()
        else:
            try:
                verdict = await self._book_in_redis(request)
            except (RedisError, OSError, TimeoutError) as exc:
                self._redis_failed(exc)
                if not sharing:
                    return ("retry", 0.0)  # look at the queues again, on the local share
            else:
                self._redis_answered()
        if verdict[0] == "go" and sharing:
            self._consume(request, self._clock())
        return verdict

    def _local_verdict(self, request: _Request, now: float) -> tuple[str, float] | None:
        """None when the per-process share allows the call now."""
        overall_at = max(self._next_call, self._paused_until.get(None, 0.0))
        if overall_at > now:
            return ("wait", overall_at - now)
        ready_at = self._ready_at(request, now)
        if ready_at > now:
            return ("chat", ready_at - now)
        return None

    async def _book_in_redis(self, request: _Request) -> tuple[str, float]:
        limits = self.limits
        chat = "-" if request.chat is None else str(request.chat)
        p = self._prefix
        keys = [
            f"{p}next", f"{p}pause", f"{p}chat:{chat}", f"{p}group:{chat}",
            f"{p}pause:{chat}", f"{p}processes",
        ]  # fmt: skip
        args = [
            f"{limits.overall_interval:.6f}",
            f"{self.shared.horizon[request.priority]:.6f}",
            "1" if request.is_message else "0",
            "1" if request.is_group else "0",
            f"{limits.chat_interval + limits.margin:.6f}",
            str(limits.group_messages),
            f"{limits.group_window + limits.margin:.6f}",
            self._member,
            f"{self.shared.member_ttl:.3f}",
        ]
        reply = await asyncio.wait_for(
            self._book(keys=keys, args=args), self.shared.redis_timeout
        )
        verdict, seconds, processes = reply
        self._processes = max(1, int(processes))
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        return verdict, max(0.0, float(seconds))

    def _start_after(self, request: _Request, at: float) -> None:
        """Let the call start at its booked moment (loop time); it stays out of the queue."""
        loop = asyncio.get_running_loop()
        if at <= loop.time():
            self._release(request, at)
            return

        def fire() -> None:
            self._releases.discard(handle)
            self._release(request, at)

        handle = loop.call_at(at, fire)
        self._releases.add(handle)

    def _release(self, request: _Request, at: float) -> None:
        """Start the call, unless it comes too late for its slot: then it books again.

        A stalled loop (or a slow answer from Redis) would otherwise start calls
        booked ~35 ms apart at the same moment, and a second seen by Telegram
        could hold more than its 30. Booking again wastes that one slot instead.
        """
        if request.future.done():
            return
        late = asyncio.get_running_loop().time() - at
        if late > self.shared.late_tolerance and request.rebooks < self.shared.max_rebooks:
            request.rebooks += 1
            request.not_before = 0.0
            self._queues[request.priority].appendleft(request)
            self._pump()
            return
        request.future.set_result(None)

    # --- Degraded mode ------------------------------------------------------------

    def _redis_failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._ask_again_at = now + self.shared.probe_interval
        if self._redis_down:
            return
        self._redis_down = True
        self._share_until = math.inf
        self._local_limits = share_of(self.limits, self._processes)
        self._next_call = max(self._next_call, now)
        metrics.set_limiter_degraded(self.name, True)
        logger.warning(
            "limiter_redis_unreachable",
            bot=self.name,
            processes=self._processes,
            share_per_second=round(self._local_limits.overall_per_second, 2),
            error=type(exc).__name__,
        )

    def _probe_soon(self) -> None:
        if self._probe is not None or self._clock() < self._ask_again_at:
            return
        self._probe = asyncio.get_running_loop().create_task(self._probe_redis())

    async def _probe_redis(self) -> None:
        try:
            await asyncio.wait_for(self._redis.ping(), self.shared.redis_timeout)
        except (RedisError, OSError, TimeoutError):
            self._ask_again_at = self._clock() + self.shared.probe_interval
        else:
            self._redis_answered()
        finally:
            self._probe = None

    def _redis_answered(self) -> None:
        if not self._redis_down:
            if self._share_until != 0.0 and self._clock() >= self._share_until:
                self._share_until = 0.0
                self._local_limits = self.limits
                metrics.set_limiter_degraded(self.name, False)
            return
        self._redis_down = False
        self._ask_again_at = 0.0
        self._share_until = self._clock() + self.shared.settle
        logger.info("limiter_redis_back", bot=self.name, settle_seconds=self.shared.settle)

    # --- Pauses Telegram asked for ----------------------------------------------------

    def _pause(self, chat: int | str | None, seconds: float) -> None:
        super()._pause(chat, seconds)
        key = f"{self._prefix}pause" if chat is None else f"{self._prefix}pause:{chat}"
        task = asyncio.get_running_loop().create_task(self._share_pause(key, seconds))
        self._background.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._background.discard)

    async def _share_pause(self, key: str, seconds: float) -> None:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(
                self._pause_script(keys=[key], args=[f"{seconds:.3f}"]), self.shared.redis_timeout
            )


def make_limiter(
    limits: Limits | None,
    *,
    name: str,
    key: str,
    redis_url: str | None = None,
    call_observers: Sequence[CallObserver] = (),
    refusal_observers: Sequence[RefusalObserver] = (),
) -> TelegramRateLimiter:
    """The shared limiter when Redis is configured (`REDIS_URL`), else the in-process one."""
    if redis_url is None:
        from django.conf import settings

        redis_url = getattr(settings, "REDIS_URL", "")
    if redis_url:
        return SharedRateLimiter(
            redis_url, key, limits, name=name, call_observers=call_observers,
            refusal_observers=refusal_observers,
        )
    return TelegramRateLimiter(limits, name=name, call_observers=call_observers,
                               refusal_observers=refusal_observers)


__all__ = ["Priority", "SharedLimits", "SharedRateLimiter", "make_limiter", "share_of"]
