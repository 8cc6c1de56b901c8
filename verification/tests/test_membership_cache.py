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
    clock.now += membership.positive_ttl() * (1 + membership.JITTER)
    assert cache_.peek((1, 1, 1)) is None


def test_ttls_are_jittered():
    ttls = {membership._ttl(True) for _ in range(50)}
    assert len(ttls) > 1
    low, high = membership.positive_ttl() * 0.9, membership.positive_ttl() * 1.1
    assert all(low <= t <= high for t in ttls)


def test_a_positive_answer_lives_as_long_as_the_setting_says(settings):
    settings.NEZUKO_MEMBERSHIP_TTL = 6 * 3600
    clock = Clock()
    cache_ = MembershipCache(clock, shared=False)
    cache_.remember(KEY, True)
    clock.now += 5 * 3600  # hours later, still an answer (no call)
    assert cache_.peek(KEY) is True
    clock.now += 2 * 3600
    assert cache_.peek(KEY) is None


@pytest.fixture
def due_at_80_percent(monkeypatch, settings):
    """No jitter; an answer in use comes due at 80 % of a 1,000 s life."""
    settings.NEZUKO_MEMBERSHIP_TTL = 1000
    monkeypatch.setattr(membership, "JITTER", 0.0)
    monkeypatch.setattr(membership, "REFRESH_SHARE", (0.8, 0.8))


def test_an_answer_in_use_comes_due_once_before_it_expires(due_at_80_percent):
    clock = Clock()
    cache_ = MembershipCache(clock, shared=False)
    cache_.remember(KEY, True)
    clock.now += 500
    assert cache_.peek(KEY) is True
    assert cache_.due_count(KEY[0]) == 0
    clock.now += 350  # past 80 %, before the end
    assert cache_.peek(KEY) is True
    assert cache_.peek(KEY) is True
    # Read twice, queued once; still answered while it waits.
    assert cache_.take_due(KEY[0], 10) == [KEY]
    assert cache_.take_due(KEY[0], 10) == []
    # The refreshed answer lives a whole new life.
    cache_.remember(KEY, True)
    clock.now += 900
    assert cache_.peek(KEY) is True


def test_an_answer_nobody_reads_is_left_to_expire(due_at_80_percent):
    clock = Clock()
    cache_ = MembershipCache(clock, shared=False)
    cache_.remember(KEY, True)
    cache_.remember((1, -1001, 43), False)
    clock.now += 900
    assert cache_.due_count(KEY[0]) == 0
    clock.now += 200
    assert cache_.peek(KEY) is None
    assert cache_.due_count(KEY[0]) == 0


def test_answers_learnt_together_come_due_spread_out(settings):
    settings.NEZUKO_MEMBERSHIP_TTL = 1000
    clock = Clock()
    cache_ = MembershipCache(clock, shared=False)
    keys = [(1, -1001, user) for user in range(1000)]
    for key in keys:  # a raid's answers, all learnt in one second
        cache_.remember(key, True)
    per_minute = []
    for _ in range(20):
        before = cache_.due_count(1)
        for _ in range(6):  # each member speaks every 10 s
            clock.now += 10
            for key in keys:
                cache_.peek(key)
        per_minute.append(cache_.due_count(1) - before)
    # Spread over several minutes (a quarter of their life): no minute takes a third.
    assert sum(per_minute) == 1000
    assert max(per_minute) < 330
    assert sum(1 for n in per_minute if n) >= 5


def test_a_refresh_another_process_made_is_taken_instead_of_asking_again(due_at_80_percent):
    clock = Clock()
    here, there = MembershipCache(clock), MembershipCache(clock)
    here.remember(KEY, True)
    clock.now += 850
    here.peek(KEY)
    assert here.take_due(KEY[0], 1) == [KEY]
    # Meanwhile the other process asked and wrote a fresh expiry to the shared level.
    there._l2_set(KEY, True, 1000)
    assert here.adopt_shared(KEY)
    clock.now += 500
    assert here.peek(KEY) is True


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
    # The shared level keeps the answer's expiry (positive: a member).
    assert cache.get("m:1:1:7") > 0
