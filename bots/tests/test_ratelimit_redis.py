"""The shared (Redis) rate limiter: several limiters on one token behave as one.

Each `SharedRateLimiter` here has its own Redis connection and its own queues,
as a separate runbot process would; they meet only in a throw-away
redis-server on its own port (tests/faults/servers.py), started and stopped
by pid, never the machine's shared Redis. The last test checks the same on
the wire: three bots on one token against the emulator's flood limits.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from telegram.ext import ExtBot

from bots.emulator.scene import Scene
from bots.ratelimit import Limits, Priority, TelegramRateLimiter
from bots.ratelimit_redis import SharedLimits, SharedRateLimiter, make_limiter
from bots.tests.test_ratelimit import HANG_GUARD, request, slow_limits
from tests.faults.servers import RedisServer, redis_available, redis_server

pytestmark = [
    pytest.mark.skipif(redis_available() is not None, reason=str(redis_available())),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


class TimedWire:
    """Records (label, monotonic start time) for every call that starts."""

    def __init__(self) -> None:
        self.started: list[tuple[str, float]] = []

    def call(self, label: str):
        async def send(*_args: Any, **_kwargs: Any) -> dict:
            self.started.append((label, time.monotonic()))
            return {"ok": label}

        return send

    def times(self, prefix: str = "") -> list[float]:
        return sorted(t for label, t in self.started if label.startswith(prefix))


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of starts inside any half-open window of `window` seconds."""
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def limiters(
    server: RedisServer, count: int, limits: Limits, **shared: Any
) -> list[SharedRateLimiter]:
    key = uuid.uuid4().hex  # a bot of its own, whatever earlier tests left in Redis
    return [
        SharedRateLimiter(
            server.url(), key, limits, name=f"process-{i}", shared=SharedLimits(**shared)
        )
        for i in range(count)
    ]


async def close(*limiters_: TelegramRateLimiter) -> None:
    for limiter in limiters_:
        await limiter.shutdown()


async def test_two_processes_together_keep_one_overall_budget(redis: RedisServer):
    a, b = limiters(redis, 2, slow_limits(overall_per_second=20.0))
    wire = TimedWire()
    calls = [
        request(limiter, wire, f"{name}{i}", chat_id=-100 - i)
        for i in range(20)
        for name, limiter in (("a", a), ("b", b))
    ]
    await asyncio.wait_for(asyncio.gather(*calls), HANG_GUARD)
    await close(a, b)

    starts = wire.times()
    # 40 calls at 20/s overall: ~1.95 s in all and no more than 20 in any second
    # (one more allowed for timer jitter at the window's edge). Two in-process
    # limiters would each take 20/s: ~1 s and 40 in a second.
    assert starts[-1] - starts[0] >= 0.9 * 39 / 20
    assert most_in_any_window(starts, 1.0) <= 21
    assert a.processes == 2 and b.processes == 2


async def test_a_person_in_one_process_does_not_wait_behind_bulk_in_another(
    redis: RedisServer,
):
    a, b = limiters(redis, 2, slow_limits(overall_per_second=20.0))
    wire = TimedWire()
    bulk = [
        asyncio.create_task(request(a, wire, f"bulk{i}", chat_id=-100 - i, level=Priority.P2))
        for i in range(30)
    ]
    await asyncio.sleep(0.3)  # a's bulk calls are under way, ~24 still queued
    asked = time.monotonic()
    answers = [
        request(b, wire, f"answer{i}", method="answerCallbackQuery", chat_id=None)
        for i in range(3)
    ]
    await asyncio.wait_for(asyncio.gather(*answers, *bulk), HANG_GUARD)
    await close(a, b)

    answered = wire.times("answer")
    # Bulk books at most 20 ms ahead, so the answers take the next three slots
    # (~0.15 s), not a place behind the ~1.2 s of queued bulk.
    assert answered[-1] - asked < 0.4
    assert sum(t > answered[-1] for t in wire.times("bulk")) >= 15
    assert most_in_any_window(wire.times(), 1.0) <= 21


async def test_enforcement_in_one_process_goes_before_bulk_in_another(redis: RedisServer):
    a, b = limiters(redis, 2, slow_limits(overall_per_second=20.0))
    wire = TimedWire()
    bulk = [
        asyncio.create_task(request(a, wire, f"bulk{i}", chat_id=-100 - i, level=Priority.P2))
        for i in range(20)
    ]
    await asyncio.sleep(0.2)
    enforcement = [request(b, wire, f"restrict{i}", chat_id=-200 - i) for i in range(8)]
    await asyncio.wait_for(asyncio.gather(*enforcement, *bulk), HANG_GUARD)
    await close(a, b)

    # Every restriction starts before the bulk calls still queued when they came.
    last_restrict = wire.times("restrict")[-1]
    assert sum(t > last_restrict for t in wire.times("bulk")) >= 8


async def test_one_chat_gets_one_message_at_a_time_across_processes(redis: RedisServer):
    limits = slow_limits(overall_per_second=1000.0, chat_interval=0.2, margin=0.0)
    a, b = limiters(redis, 2, limits)
    wire = TimedWire()
    sends = [
        request(limiter, wire, f"{name}{i}", method="sendMessage", chat_id=42)
        for i in range(3)
        for name, limiter in (("a", a), ("b", b))
    ]
    await asyncio.wait_for(asyncio.gather(*sends), HANG_GUARD)
    await close(a, b)

    starts = wire.times()
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.19, gaps


async def test_a_group_window_counts_the_messages_of_every_process(redis: RedisServer):
    limits = slow_limits(
        overall_per_second=1000.0, chat_interval=0.0, margin=0.0,
        group_messages=3, group_window=0.6,
    )  # fmt: skip
    a, b = limiters(redis, 2, limits)
    wire = TimedWire()
    sends = [
        request(limiter, wire, f"{name}{i}", method="sendMessage", chat_id=-1001)
        for i in range(4)
        for name, limiter in (("a", a), ("b", b))
    ]
    other = request(b, wire, "other", method="sendMessage", chat_id=-1002)
    await asyncio.wait_for(asyncio.gather(*sends, other), HANG_GUARD)
    await close(a, b)

    group = [t for label, t in wire.started if label != "other"]
    # 8 messages, 3 per 0.6 s: the 7th cannot start before 1.2 s.
    assert most_in_any_window(sorted(group), 0.59) <= 3
    assert group[-1] - group[0] >= 1.19
    # Another group's message did not wait for this group's window.
    assert dict(wire.started)["other"] - group[0] < 0.3


@pytest.mark.parametrize("outage", ["paused", "stopped"])
async def test_while_redis_is_away_each_process_keeps_to_its_share(outage: str):
    limits = slow_limits(overall_per_second=20.0)
    with redis_server() as server:
        a, b = limiters(server, 2, limits, redis_timeout=0.2, probe_interval=0.5, settle=0.5)
        wire = TimedWire()
        # Both processes have used the token: Redis counts two.
        for name, limiter in (("a", a), ("b", b), ("a", a)):
            await request(limiter, wire, f"hello-{name}")
        assert a.processes == 2 and b.processes == 2
        if outage == "paused":
            server.pause()  # a partition: connections hang
        else:
            server.stop()  # connections refused
        calls = [
            request(limiter, wire, f"{name}{i}", chat_id=-100 - i)
            for i in range(10)
            for name, limiter in (("a", a), ("b", b))
        ]
        results = await asyncio.wait_for(asyncio.gather(*calls), HANG_GUARD)
        assert len(results) == 20  # nothing was dropped: enforcement went on
        assert a.degraded and b.degraded
        # Each process at half the budget (10/s): together within 20/s.
        for name in ("a", "b"):
            own = [t for label, t in wire.started if label[0] == name and label[1:].isdigit()]
            assert own[-1] - own[0] >= 0.9 * 9 / 10
            # ...and at that share: probing a hanging Redis does not hold the queue.
            assert own[-1] - own[0] < 1.5
        outage_starts = sorted(t for label, t in wire.started if not label.startswith("hello"))
        assert most_in_any_window(outage_starts, 1.0) <= 21

        if outage == "paused":
            server.resume()
            # Back on Redis after the next probe; on the share until `settle` passed.
            for i in range(40):
                await request(a, wire, f"after{i}", chat_id=-300 - i)
                if not a.degraded:
                    break
                await asyncio.sleep(0.05)
            assert not a.degraded
        await close(a, b)


async def test_without_redis_url_it_is_the_in_process_limiter():
    limiter = make_limiter(None, name="1", key="1", redis_url="")
    assert type(limiter) is TelegramRateLimiter


async def test_three_bots_on_one_token_cause_no_429_at_the_emulator(
    scene: Scene, redis: RedisServer
):
    emu = scene.emulator
    emu.flood_limits = True  # Telegram's: 30/s per bot, 20/min per group, 1/s per chat
    key = uuid.uuid4().hex
    bots = [
        ExtBot(
            scene.bot.token,
            base_url=f"{emu.api_url}/bot",
            rate_limiter=SharedRateLimiter(redis.url(), key, name=f"process-{i}"),
        )
        for i in range(3)
    ]
    for bot in bots:
        await bot.initialize()
    try:
        since = len(emu.calls)
        started = time.monotonic()
        calls = [
            bot.get_chat_member(scene.group.id, scene.alice.id)
            for _ in range(25)
            for bot in bots
        ]
        calls += [bot.send_message(scene.group.id, "hello") for bot in bots]
        await asyncio.wait_for(asyncio.gather(*calls), HANG_GUARD)
        elapsed = time.monotonic() - started
    finally:
        for bot in bots:
            await bot.shutdown()

    made = emu.calls[since:]
    assert len(made) == 78
    assert [c for c in made if c.error_code == 429] == []
    # 78 calls within 30/s x 0.94 take ~2.7 s; the three messages to one chat 2 s.
    assert elapsed >= 0.9 * 77 / (30 * 0.94)
