"""The membership cache: two levels, TTLs with jitter, single flight, outages."""

import asyncio

import pytest
from django.core.cache import cache

from verification import membership
from verification.membership import MembershipCache, MembershipUnknown

KEY = (1, -1001, 42)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Telegram:
    """Stands in for getChatMember: counts calls, can be made to wait or fail."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.error: Exception | None = None

    async def __call__(self) -> bool:
        self.calls += 1
        await self.gate.wait()
        if self.error:
            raise self.error
        return self.answer


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


async def test_it_asks_once_then_answers_from_memory():
    cache_, telegram = MembershipCache(Clock()), Telegram(True)
    first = await cache_.lookup(KEY, telegram)
    second = await cache_.lookup(KEY, telegram)
    # One call, then a hit.
    assert (first.is_member, first.cache_hit) == (True, False)
    assert (second.is_member, second.cache_hit) == (True, True)
    assert telegram.calls == 1


async def test_negative_answers_expire_sooner_than_positive_ones():
    clock = Clock()
    cache_ = MembershipCache(clock)
    cache_.remember((1, 1, 1), True)
    cache_.remember((1, 1, 2), False)
    cache.clear()  # only the local level here
    clock.now += membership.NEGATIVE_TTL * (1 + membership.JITTER) + 1
    # The negative answer is gone, the positive one is still there.
    assert cache_.peek((1, 1, 2)) is None
    assert cache_.peek((1, 1, 1)) is True
    clock.now += membership.POSITIVE_TTL * (1 + membership.JITTER)
    assert cache_.peek((1, 1, 1)) is None


def test_ttls_are_jittered():
    ttls = {membership._ttl(True) for _ in range(50)}
    assert len(ttls) > 1
    low, high = membership.POSITIVE_TTL * 0.9, membership.POSITIVE_TTL * 1.1
    assert all(low <= t <= high for t in ttls)


async def test_concurrent_misses_share_one_call():
    cache_, telegram = MembershipCache(Clock()), Telegram(False)
    telegram.gate.clear()
    lookups = [asyncio.ensure_future(cache_.lookup(KEY, telegram)) for _ in range(20)]
    await asyncio.sleep(0)
    telegram.gate.set()
    results = await asyncio.gather(*lookups)
    # Twenty callers, one getChatMember.
    assert telegram.calls == 1
    assert {r.is_member for r in results} == {False}


async def test_an_unknown_answer_is_not_cached_and_is_shared():
    cache_, telegram = MembershipCache(Clock()), Telegram()
    telegram.error = MembershipUnknown("boom")
    telegram.gate.clear()
    lookups = [asyncio.ensure_future(cache_.lookup(KEY, telegram)) for _ in range(3)]
    await asyncio.sleep(0)
    telegram.gate.set()
    results = await asyncio.gather(*lookups)
    assert [r.is_member for r in results] == [None, None, None]
    assert telegram.calls == 1
    # The next lookup asks again.
    telegram.error = None
    assert (await cache_.lookup(KEY, telegram)).is_member is True
    assert telegram.calls == 2


async def test_fresh_lookups_skip_the_cache():
    cache_, telegram = MembershipCache(Clock()), Telegram(False)
    await cache_.lookup(KEY, telegram)
    telegram.answer = True
    assert (await cache_.lookup(KEY, telegram, fresh=True)).is_member is True
    # And the fresh answer replaces the cached one.
    assert cache_.peek(KEY) is True


async def test_processes_share_answers_through_djangos_cache():
    telegram = Telegram(True)
    await MembershipCache(Clock()).lookup(KEY, telegram)
    other_process = MembershipCache(Clock())
    result = await other_process.lookup(KEY, telegram)
    assert result.cache_hit and result.is_member
    assert telegram.calls == 1


async def test_a_shared_cache_outage_degrades_to_memory_and_recovers(settings):
    clock = Clock()
    cache_, telegram = MembershipCache(clock), Telegram(True)
    # A Redis nobody listens on.
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    # It should still answer, from Telegram and then from memory.
    assert (await cache_.lookup(KEY, telegram)).is_member is True
    assert (await cache_.lookup(KEY, telegram)).cache_hit is True
    assert not cache_._l2_available()
    # Redis comes back: after the retry delay the shared level is used again.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    clock.now += membership.L2_RETRY_SECONDS + 1
    cache_.remember((1, 1, 7), True)
    assert cache.get("m:1:1:7") == 1
