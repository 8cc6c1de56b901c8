"""Is this user subscribed to that channel? Cached, because asking costs a call.

Key: (bot, channel, user). Two levels:

1. process memory (a dict; ~0.2 µs) — the hot path never goes further for a
   known subscriber;
2. Django's cache (Redis when `REDIS_URL` is set) shared by every runbot
   process. If it fails, the cache marks it down for `L2_RETRY_SECONDS` and
   runs on memory alone, then tries again: an outage degrades, never fails.

Positive answers live `NEZUKO_MEMBERSHIP_TTL` seconds (12 hours by default),
negative ones `NEGATIVE_TTL` (a user who just joined should not wait long),
each with ±`JITTER` so a raid's entries do not all expire in the same second.
Long-lived "yes" answers are safe because the bot is admin in every linked
channel and its chat_member updates write answers straight in (`remember`):
a leave flips the answer at once, with no call. The TTL only bounds how long
a missed update could go unnoticed.

Refresh ahead: a positive answer read (`peek`) in the last part of its life
(from `REFRESH_SHARE` of it, a random point per entry, so answers learnt
together come due apart) is put on its bot's due list; the maintenance loop
asks Telegram again at the lowest priority (`telegram_reads.refresh_due`) and
the answer lives another TTL. Answers nobody reads are not refreshed: they
expire. Concurrent misses for one key share one fetch (single flight).

At start-up `load_shared` copies the bot's answers from the shared level into
memory in bulk (SCAN + pipelined MGET), so the first message of every known
subscriber after a restart is decided from memory like any other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
from collections.abc import Awaitable, Callable

import structlog
from django.conf import settings
from django.core.cache import cache

from bots import metrics

logger = structlog.get_logger(__name__)

NEGATIVE_TTL = 60.0
JITTER = 0.1
# A positive answer in use is refreshed from a random point in this share of its life.
REFRESH_SHARE = (0.7, 0.95)
L2_RETRY_SECONDS = 10.0
MAX_LOCAL_ENTRIES = 500_000
# Keys waiting for a background refresh, per bot; past it an answer simply expires.
MAX_DUE = 50_000
LOAD_BATCH = 1_000
# A shared answer counts as refreshed elsewhere when it outlives ours by this much
# (the shared level stores whole seconds of wall-clock time).
ADOPT_MARGIN = 5.0

Key = tuple[int, int, int]  # (bot telegram id, channel chat id, user id)
# A fetch answers True/False, or raises MembershipUnknown when Telegram cannot say.
Fetch = Callable[[], Awaitable[bool]]


class MembershipUnknown(Exception):
    """Telegram could not tell (error, timeout, bot not admin in the channel)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Lookup:
    is_member: bool | None  # None: unknown (Telegram failed)
    cache_hit: bool


def positive_ttl() -> float:
    return float(settings.NEZUKO_MEMBERSHIP_TTL)


def _ttl(is_member: bool) -> float:
    base = positive_ttl() if is_member else NEGATIVE_TTL
    return base * random.uniform(1 - JITTER, 1 + JITTER)


def _refresh_at(is_member: bool, expires: float) -> float:
    """When an answer in use comes due for a background refresh (negative: never)."""
    if not is_member:
        return expires
    low, high = REFRESH_SHARE
    return expires - positive_ttl() * (1 - random.uniform(low, high))


def _l2_key(key: Key) -> str:
    return f"m:{key[0]}:{key[1]}:{key[2]}"


def _key_of(l2_key: str) -> Key | None:
    parts = l2_key.split(":")
    if len(parts) != 4 or parts[0] != "m":
        return None
    try:
        return int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None


def _shared_value(is_member: bool, expires_at: float) -> int:
    """What the shared level stores: the answer's wall-clock expiry, negative for "no",
    so another process (or this one after a restart) keeps the answer's age."""
    return int(expires_at) if is_member else -int(expires_at)


def _from_shared(value: object, now: float) -> tuple[bool, float] | None:
    """`(is_member, seconds left)` from a stored value; 1 and 0 are answers written
    before expiries were stored (given a fresh TTL)."""
    if not isinstance(value, int):
        return None
    if value in (0, 1):
        return bool(value), _ttl(bool(value))
    left = abs(value) - now
    return (value > 0, left) if left > 0 else None


class MembershipCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 shared: bool = True) -> None:
        self.clock = clock
        # False: process memory only (a benchmark's simulated hours).
        self.shared = shared
        # key -> (answer, expires, refresh_at); refresh_at == expires: never (again) due.
        self._local: dict[Key, tuple[bool, float, float]] = {}
        self._inflight: dict[Key, asyncio.Future[bool]] = {}
        self._due: dict[int, dict[Key, None]] = {}
        self._l2_down_until = 0.0

    # --- reads --------------------------------------------------------------------

    def peek(self, key: Key) -> bool | None:
        """The answer from process memory only, or None when not known."""
        entry = self._local.get(key)
        if entry is None:
            return None
        value, expires, refresh_at = entry
        now = self.clock()
        if now >= refresh_at:  # rare: one comparison on the hot path otherwise
            if expires < now:
                del self._local[key]
                return None
            if refresh_at != expires:  # not queued yet (negative answers never are)
                self._come_due(key, value, expires)
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
                shared = self._l2_get(key)
                if shared is not None:
                    value = shared[0]
                    self._store_local(key, *shared)
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
        ttl = _ttl(is_member)
        self._store_local(key, is_member, ttl)
        self._l2_set(key, is_member, ttl)

    def forget(self, key: Key) -> None:
        self._local.pop(key, None)
        self._due.get(key[0], {}).pop(key, None)
        if self._l2_available():
            try:
                cache.delete(_l2_key(key))
            except Exception:
                self._l2_failed()

    def clear_local(self) -> None:
        self._local.clear()
        self._due.clear()

    def __len__(self) -> int:
        return len(self._local)

    def _store_local(self, key: Key, value: bool, ttl: float) -> None:
        if len(self._local) >= MAX_LOCAL_ENTRIES:
            self._evict()
        expires = self.clock() + ttl
        self._local[key] = (value, expires, _refresh_at(value, expires))

    def _evict(self) -> None:
        """Drop expired entries, and the oldest tenth if that was not enough."""
        now = self.clock()
        for k in [k for k, (_, exp, _) in self._local.items() if exp < now]:
            del self._local[k]
        if len(self._local) >= MAX_LOCAL_ENTRIES:
            for k in list(self._local)[: MAX_LOCAL_ENTRIES // 10]:
                del self._local[k]

    # --- refresh ahead -----------------------------------------------------------

    def _come_due(self, key: Key, value: bool, expires: float) -> None:
        """An answer in use is near its end: queue it (once) for a background refresh."""
        self._local[key] = (value, expires, expires)
        due = self._due.setdefault(key[0], {})
        if len(due) < MAX_DUE:
            due[key] = None

    def take_due(self, bot_id: int, limit: int) -> list[Key]:
        """Up to `limit` keys of this bot due for a refresh, oldest first."""
        due = self._due.get(bot_id)
        if not due:
            return []
        keys = list(itertools.islice(due, limit))
        for key in keys:
            del due[key]
        return keys

    def due_count(self, bot_id: int) -> int:
        return len(self._due.get(bot_id, ()))

    def adopt_shared(self, key: Key) -> bool:
        """Before refreshing: True when another process already did (the shared level
        holds a later expiry than ours), whose answer is then taken."""
        entry, shared = self._local.get(key), self._l2_get(key)
        if entry is None or shared is None:
            return False
        value, left = shared
        if self.clock() + left <= entry[1] + ADOPT_MARGIN:
            return False
        self._store_local(key, value, left)
        return True

    # --- start-up -------------------------------------------------------------------

    def load_shared(self, bot_id: int) -> int:
        """Copy this bot's answers from the shared level into memory in bulk: one SCAN
        and one pipelined MGET per `LOAD_BATCH` keys. Returns how many were loaded."""
        iter_keys = getattr(cache, "iter_keys", None)
        if iter_keys is None or not self._l2_available():
            return 0  # process memory only: nothing survives a restart anyway
        loaded, batch = 0, []
        try:
            for name in iter_keys(f"m:{bot_id}:*", itersize=LOAD_BATCH):
                batch.append(name)
                if len(batch) >= LOAD_BATCH:
                    loaded += self._load(batch)
                    batch = []
            if batch:
                loaded += self._load(batch)
        except Exception:
            self._l2_failed()
        return loaded

    def _load(self, names: list[str]) -> int:
        now, loaded = time.time(), 0
        for name, stored in cache.get_many(names).items():
            key, answer = _key_of(name), _from_shared(stored, now)
            if key is not None and answer is not None and key not in self._local:
                self._store_local(key, *answer)
                loaded += 1
        return loaded

    # --- the shared level ---------------------------------------------------------

    def _l2_available(self) -> bool:
        return self.shared and self.clock() >= self._l2_down_until

    def _l2_failed(self) -> None:
        if self._l2_available():
            logger.warning("membership.shared_cache_down", retry_in=L2_RETRY_SECONDS)
        self._l2_down_until = self.clock() + L2_RETRY_SECONDS

    def _l2_get(self, key: Key) -> tuple[bool, float] | None:
        """`(is_member, seconds left)` from the shared level, or None."""
        if not self._l2_available():
            return None
        try:
            value = cache.get(_l2_key(key))
        except Exception:
            self._l2_failed()
            return None
        return _from_shared(value, time.time())

    def _l2_set(self, key: Key, value: bool, ttl: float) -> None:
        if not self._l2_available():
            return
        try:
            cache.set(_l2_key(key), _shared_value(value, time.time() + ttl),
                      timeout=max(1, int(ttl)))
        except Exception:
            self._l2_failed()


memberships = MembershipCache()
