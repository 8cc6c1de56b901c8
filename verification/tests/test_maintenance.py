"""The maintenance loop's background work: the check-up skips idle groups, runs at
the lowest priority and is spread over its interval; start-up loads are bulk."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from groups.config import configs
from tests.factories import make_bot, make_channel, make_group
from verification import maintenance
from verification.membership import MembershipCache

pytestmark = pytest.mark.django_db(transaction=True)


def waited(priority: str) -> float:
    return REGISTRY.get_sample_value("nezuko_limiter_wait_seconds_count",
                                     {"priority": priority}) or 0


async def dogs_and_cats(world):
    """Two protected groups; only in Cats has a member spoken lately."""
    s = world.scene
    dogs = s.emulator.create_supergroup("Dogs", creator=s.alice)
    s.emulator.promote(dogs, s.bot, by=s.alice)
    await world.protect()
    await world.protect(group=dogs)
    s.emulator.join(s.channel, s.bob)
    s.emulator.send_message(s.group, s.bob, "hello")
    await world.settle()
    return dogs


async def test_the_checkup_skips_idle_groups_and_asks_at_the_lowest_priority(world):
    s = world.scene
    dogs = await dogs_and_cats(world)
    since = len(world.emu.calls)
    before = {p: waited(p) for p in ("P0", "P1", "P2")}
    result = await maintenance.checkup(world.engine)
    assert (result.checked, result.skipped_idle) == (1, 1)
    calls = [c for c in world.emu.calls[since:] if c.method != "getUpdates"]
    assert {c.params.get("chat_id") for c in calls} >= {s.group.id, s.channel.id}
    assert not [c for c in calls if c.params.get("chat_id") == dogs.id]
    # /doctor's reads ask for P0 when a person runs it; scheduled, every one is P2.
    assert waited("P2") - before["P2"] == len(calls)
    assert (waited("P0"), waited("P1")) == (before["P0"], before["P1"])


async def test_the_checkup_spreads_its_groups_over_the_interval(world):
    s = world.scene
    dogs = await dogs_and_cats(world)
    s.emulator.join(dogs, s.bob)
    s.emulator.send_message(dogs, s.bob, "woof")
    await world.settle()
    since = len(world.emu.calls)
    result = await maintenance.checkup(world.engine, spread_over=1.0, stop=asyncio.Event())
    assert result.checked == 2
    calls = [c for c in world.emu.calls[since:] if c.method != "getUpdates"]
    first = [c.at for c in calls if c.params.get("chat_id") in (s.group.id, dogs.id)]
    # Two groups over one second: the second starts about half a second after the first.
    assert max(first) - min(first) >= 0.4


def test_every_groups_configuration_loads_in_the_same_few_queries():
    bot = make_bot()
    channel = make_channel(bot)

    def preload_queries(groups: int) -> int:
        for _ in range(groups):
            make_group(bot, channels=[channel])
        configs.clear()
        with CaptureQueriesContext(connection) as queries:
            configs.preload(bot.pk)
        # The shared version check (at most every 2 s) is not part of the load.
        return len([q for q in queries.captured_queries if "configversion" not in q["sql"]])

    few, many = preload_queries(5), preload_queries(45)
    # Groups, their channel links, their admins: three queries for any number.
    assert few == many == 3
    # Every group is then known from memory, channels included.
    loaded = [c for (b, _), c in configs._groups.items() if b == bot.pk]
    assert len(loaded) == 50 and all(c.channels[0].chat_id == channel.chat_id for c in loaded)


async def test_start_up_loads_the_bots_answers_from_the_shared_cache_in_bulk(
        monkeypatch, settings):
    if not hasattr(cache, "iter_keys"):
        pytest.skip("needs Redis (REDIS_URL): process memory does not outlive a restart")
    settings.NEZUKO_MEMBERSHIP_TTL = 3600
    before_restart = MembershipCache()
    for user in range(2500):
        before_restart.remember((77, -1001, user), user % 2 == 0)
    before_restart.remember((78, -1001, 1), True)  # another bot's answer
    calls = {"get": 0, "get_many": 0, "iter_keys": 0}
    for name in calls:
        real = getattr(cache, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(cache, name, counted)
    after_restart = MembershipCache()
    assert await sync_to_async(after_restart.load_shared)(77) == 2500
    # One SCAN walk and one MGET per 1,000 keys (SCAN may repeat a key, so perhaps
    # one more); no GET per key.
    assert (calls["get"], calls["iter_keys"]) == (0, 1)
    assert 3 <= calls["get_many"] <= 4
    assert after_restart.peek((77, -1001, 2)) is True
    assert after_restart.peek((77, -1001, 3)) is False
    assert after_restart.peek((78, -1001, 1)) is None
