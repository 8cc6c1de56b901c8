"""Is this user subscribed to that channel? Cached, because asking costs a call.

Key: (bot, channel, user). Two levels:

1. process memory (a dict; ~0.2 µs) — the hot path never goes further for a
   known subscriber;
2. Django's cache (Redis when `REDIS_URL` is set) shared by every runbot
   process. If it fails, the cache marks it down for `L2_RETRY_SECONDS` and
   runs on memory alone, then tries again: an outage degrades, never fails.

Positive answers live `POSITIVE_TTL` seconds, negative ones `NEGATIVE_TTL`
(a user who just joined should not wait long), each with ±`JITTER` so a raid's
entries do not all expire in the same second. Concurrent misses for one key
share one fetch (single flight). Channel chat_member updates write answers
straight in (`remember`), so most changes cost no call at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable

import structlog
from django.core.cache import cache

from bots import metrics

logger = structlog.get_logger(__name__)

POSITIVE_TTL = 600.0
NEGATIVE_TTL = 60.0
JITTER = 0.1
L2_RETRY_SECONDS = 10.0
MAX_LOCAL_ENTRIES = 200_000

Key = tuple[int, int, int]  # (bot telegram id, channel chat id, user id)
# A fetch answers True/False, or raises MembershipUnknown when Telegram cannot say.
Fetch = Callable[[], Awaitable[bool]]


class MembershipUnknown(Exception):
    """Telegram could not tell (error, timeout, bot not admin in the channel)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Lookup:
    is_member: bool | None  # None: unknown (Telegram failed)
    cache_hit: bool


def _ttl(is_member: bool) -> float:
    base = POSITIVE_TTL if is_member else NEGATIVE_TTL
    return base * random.uniform(1 - JITTER, 1 + JITTER)


def _l2_key(key: Key) -> str:
    return f"m:{key[0]}:{key[1]}:{key[2]}"


class MembershipCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._local: dict[Key, tuple[bool, float]] = {}
        self._inflight: dict[Key, asyncio.Future[bool]] = {}
        self._l2_down_until = 0.0

    # --- reads --------------------------------------------------------------------

    def peek(self, key: Key) -> bool | None:
        """The answer from process memory only, or None when not known."""
        entry = self._local.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires < self.clock():
            del self._local[key]
            return None
        return value

    async def lookup(self, key: Key, fetch: Fetch, *, fresh: bool = False) -> Lookup:
        """Answer from memory, then the shared cache, then `fetch()` (once per key).

        `fresh=True` skips both cache levels (the "I've joined" re-check).
        A fetch that raises MembershipUnknown gives `Lookup(None, False)` and
        caches nothing.
        """
        if not fresh:
            value = self.peek(key)
            if value is None:
                value = self._l2_get(key)
                if value is not None:
                    self._store_local(key, value)
            if value is not None:
                metrics.record_cache(True)
                return Lookup(value, True)
        metrics.record_cache(False)
        try:
            value = await self._single_flight(key, fetch, fresh=fresh)
        except MembershipUnknown:
            return Lookup(None, False)
        return Lookup(value, False)

    async def _single_flight(self, key: Key, fetch: Fetch, *, fresh: bool) -> bool:
        pending = self._inflight.get(key)
        if pending is not None and not fresh:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await fetch()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            # Nobody else may be waiting; mark the exception retrieved.
            future.exception()
            raise
        else:
            self.remember(key, value)
            future.set_result(value)
            return value
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    # --- writes -------------------------------------------------------------------

    def remember(self, key: Key, is_member: bool) -> None:
        """Record an answer we learnt (a fetch, or a channel chat_member update)."""
        self._store_local(key, is_member)
        self._l2_set(key, is_member)

    def forget(self, key: Key) -> None:
        self._local.pop(key, None)
        if self._l2_available():
            try:
                cache.delete(_l2_key(key))
            except Exception:
                self._l2_failed()

    def clear_local(self) -> None:
        self._local.clear()

    def _store_local(self, key: Key, value: bool) -> None:
        if len(self._local) >= MAX_LOCAL_ENTRIES:
            self._evict()
        self._local[key] = (value, self.clock() + _ttl(value))

    def _evict(self) -> None:
        """Drop expired entries, and the oldest tenth if that was not enough."""
        now = self.clock()
        for k in [k for k, (_, exp) in self._local.items() if exp < now]:
            del self._local[k]
        if len(self._local) >= MAX_LOCAL_ENTRIES:
            for k in list(self._local)[: MAX_LOCAL_ENTRIES // 10]:
                del self._local[k]

    # --- the shared level ---------------------------------------------------------

    def _l2_available(self) -> bool:
        return self.clock() >= self._l2_down_until

    def _l2_failed(self) -> None:
        if self._l2_available():
            logger.warning("membership.shared_cache_down", retry_in=L2_RETRY_SECONDS)
        self._l2_down_until = self.clock() + L2_RETRY_SECONDS

    def _l2_get(self, key: Key) -> bool | None:
        if not self._l2_available():
            return None
        try:
            value = cache.get(_l2_key(key))
        except Exception:
            self._l2_failed()
            return None
        return None if value is None else bool(value)

    def _l2_set(self, key: Key, value: bool) -> None:
        if not self._l2_available():
            return
        try:
            cache.set(_l2_key(key), 1 if value else 0, timeout=int(_ttl(value)))
        except Exception:
            self._l2_failed()


memberships = MembershipCache()
