"""Membership kept fresh by updates: long-lived answers, flipped by chat_member
updates at once, refreshed before they expire at the lowest priority."""

import asyncio

import pytest
from django.core.cache import cache
from prometheus_client import REGISTRY

from verification import membership
from verification.membership import memberships

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    """The membership cache's clock, moved by hand (hours pass in a test)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def waited(priority: str) -> float:
    """Calls the bot's limiter has let through at `priority` so far."""
    return REGISTRY.get_sample_value("nezuko_limiter_wait_seconds_count",
                                     {"priority": priority}) or 0


async def until(condition) -> None:
    """Wait (5 s at most) for what the maintenance loop, running beside the test, does."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(memberships, "clock", clock)
    return clock


async def test_a_channel_leave_flips_a_long_lived_answer_at_once(world, clock, settings):
    settings.NEZUKO_MEMBERSHIP_TTL = 6 * 3600
    s = world.scene
    await world.protect()
    s.emulator.join(s.channel, s.bob)
    s.emulator.send_message(s.group, s.bob, "hello")
    await world.settle()
    key = (s.bot.id, s.channel.id, s.bob.id)
    clock.now += 5 * 3600  # five hours on, bob is still known to be subscribed
    assert memberships.peek(key) is True
    asked = len(world.calls("getChatMember", user_id=s.bob.id))
    s.emulator.leave(s.channel, s.bob)
    await world.emu.wait_for_call("restrictChatMember", chat_id=s.group.id, user_id=s.bob.id)
    # The update was the answer: no call, and the cache says "no" now.
    assert memberships.peek(key) is False
    assert len(world.calls("getChatMember", user_id=s.bob.id)) == asked


async def test_an_answer_in_use_is_refreshed_in_the_background_at_the_lowest_priority(
        world, clock, settings, monkeypatch):
    settings.NEZUKO_MEMBERSHIP_TTL = 1000
    monkeypatch.setattr(membership, "JITTER", 0.0)
    monkeypatch.setattr(membership, "REFRESH_SHARE", (0.8, 0.8))
    s = world.scene
    await world.protect()
    s.emulator.join(s.channel, s.bob)
    s.emulator.send_message(s.group, s.bob, "hello")
    await world.settle()
    key = (s.bot.id, s.channel.id, s.bob.id)
    # The shared level runs on wall time: only process memory ages here.
    cache.delete(membership._l2_key(key))
    since = len(world.emu.calls)
    p0, p1, p2 = waited("P0"), waited("P1"), waited("P2")
    clock.now += 900  # past 80 % of its life: bob speaks, the answer comes due
    s.emulator.send_message(s.group, s.bob, "still here")
    await world.settle()
    # The maintenance loop asks again, beside the traffic, at P2.
    await world.emu.wait_for_call("getChatMember", since=since, user_id=s.bob.id,
                                  chat_id=s.channel.id)
    assert waited("P2") - p2 >= 1
    # bob's message itself was decided from memory: nothing at P1, and P0 only
    # answered the settle probe's /help.
    assert waited("P1") == p1
    assert waited("P0") - p0 <= 1
    # The refreshed answer outlives the old one's end (1,000 s after it was learnt).
    await until(lambda: memberships._local[key][1] > 1_001_000)
    clock.now += 500
    assert memberships.peek(key) is True


async def test_an_answer_past_its_ttl_is_asked_again_in_the_foreground(world, clock, settings):
    settings.NEZUKO_MEMBERSHIP_TTL = 1000
    s = world.scene
    await world.protect()
    s.emulator.join(s.channel, s.bob)
    s.emulator.send_message(s.group, s.bob, "hello")
    await world.settle()
    # The shared level runs on wall time: only process memory ages here.
    cache.delete(membership._l2_key((s.bot.id, s.channel.id, s.bob.id)))
    clock.now += 2000  # bob was away longer than the TTL: nothing was refreshed
    since = len(world.emu.calls)
    s.emulator.send_message(s.group, s.bob, "back")
    await world.emu.wait_for_call("getChatMember", since=since, user_id=s.bob.id)
    await world.settle()
    assert not world.calls("restrictChatMember", user_id=s.bob.id)
