"""The update bus on a real redis-server of the test's own, and the spread of the work.

Unit level: partitions, the fair assignment, the Redis Streams bus (append,
re-polled batches, consumer groups, claiming a dead consumer's entries,
trimming). Runtime level: two supervisors in one process, each with its own
bus client and registration, against the Bot API emulator: they split the
bots, answer through the bus, and one takes over when the other stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from bots import webhook
from bots.bus import (
    BusUnavailable,
    GroupAppend,
    InProcessBus,
    RedisBus,
    partition_of,
    stream_key,
)
from bots.bus_spread import Membership, assign
from bots.locks import FileLocks
from bots.supervisor import Supervisor
from bots.tests.runtime_support import close_db_threads, eventually, make_bot  # noqa: F401
from bots.tests.test_supervisor import options, ping
from tests.faults.servers import (
    RedisServer,
    free_port,
    redis_available,
    redis_server,
)

needs_redis = pytest.mark.skipif(redis_available() is not None, reason=str(redis_available()))


def message(update_id: int, chat_id: int, text: str = "hi") -> dict[str, Any]:
    return {"update_id": update_id,
            "message": {"message_id": update_id, "date": 0, "text": text,
                        "chat": {"id": chat_id, "type": "supergroup"}}}


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def bus(redis: RedisServer) -> AsyncIterator[RedisBus]:
    bus = RedisBus(redis.url(), partitions=4)
    yield bus
    await bus.close()


# --- partitions and the assignment ------------------------------------------------------


def test_one_chat_always_lands_in_one_partition_and_chatless_updates_in_zero():
    chat = -1001234567890
    assert {partition_of(message(i, chat), 8) for i in range(50)} == {chat % 8}
    callback = {"update_id": 1, "callback_query": {"id": "q", "message": {"chat": {"id": 13}}}}
    assert partition_of(callback, 8) == 13 % 8
    assert partition_of({"update_id": 2, "inline_query": {"id": "x", "query": ""}}, 8) == 0
    assert {partition_of(message(1, c), 8) for c in range(-40, 40)} == set(range(8))


def test_six_bots_on_three_processes_are_two_each_whatever_the_order():
    bots = [101, 202, 303, 404, 505, 606]
    members = ["a:1", "b:2", "c:3"]
    shares = assign(bots, members)
    assert sorted(Counter(shares.values()).values()) == [2, 2, 2]
    assert assign(list(reversed(bots)), list(reversed(members))) == shares
    # One process leaves: its two bots go to the others, 3/3, every bot still served.
    after = assign(bots, ["a:1", "b:2"])
    assert sorted(Counter(after.values()).values()) == [3, 3]
    assert set(after) == set(bots)


def test_partitions_of_one_busy_bot_spread_over_the_processes():
    pairs = [(777, p) for p in range(8)]
    shares = assign(pairs, ["a", "b", "c"])
    assert sorted(Counter(shares.values()).values()) == [2, 3, 3]


# --- the Redis Streams bus --------------------------------------------------------------


@needs_redis
async def test_a_batch_polled_again_is_not_appended_twice(bus: RedisBus):
    batch = [message(10, 1), message(11, 2), message(12, 1)]
    assert await bus.append("42", batch, polled=True) == 3
    # Nothing confirmed it (the poller died): the next poller fetches it again.
    assert await bus.append("42", batch + [message(13, 3)], polled=True) == 1
    delivered = await bus.read("42", range(4), "c1", block_ms=0)
    assert sorted(d.update_id for d in delivered) == [10, 11, 12, 13]
    # One chat's updates come out of one stream in order.
    chat_1 = [d.update_id for d in delivered if d.raw["message"]["chat"]["id"] == 1]
    assert chat_1 == [10, 12]


@needs_redis
async def test_what_telegram_sent_comes_out_of_the_bus_as_it_went_in(bus: RedisBus):
    """The poller's encoder (ujson when installed) keeps odd text, big ids and floats;
    line breaks and "<digits> <digits> " in a text do not break the append's lines."""
    odd = message(20, 1)
    odd["message"]["text"] = "\ud800 broken, \U0001f600 fine, a/b \\ \"q\" \u00e9\n1 2 {x}\r\n"
    odd["message"]["from"] = {"id": 2**53 + 1, "is_bot": False, "first_name": "Big"}
    odd["message"]["location"] = {"latitude": 48.858370123456789, "longitude": -0.1}
    after = message(21, 2, "3 4 5\n")
    assert await bus.append("42", [odd, after], polled=True) == 2
    delivered = await bus.read("42", range(4), "c1", block_ms=0)
    assert [d.raw for d in delivered] == [odd, after]


@needs_redis
async def test_the_backlog_is_what_was_not_acknowledged_not_what_was_not_trimmed(
        bus: RedisBus):
    """The poller's back-pressure: acknowledged entries stop counting at once, not at
    the next trim (XLEN would keep them for up to its 2 s)."""
    assert await bus.backlog("42") == 0  # no stream yet
    await bus.append("42", [message(100 + i, i % 3) for i in range(12)], polled=True)
    assert await bus.backlog("42") == 12  # no consumer group yet: all of it waits
    delivered = await bus.read("42", range(4), "c1", count=3, block_ms=0)
    assert await bus.backlog("42") == 12  # read, not acknowledged: still waiting
    await bus.ack("42", delivered[:5])
    assert await bus.backlog("42") == 7
    assert sum([await bus.redis.xlen(stream_key("42", p)) for p in range(4)]) == 12


@needs_redis
async def test_unacknowledged_updates_of_a_dead_consumer_are_claimed(bus: RedisBus):
    await bus.append("42", [message(i, i) for i in range(1, 9)])
    first = await bus.read("42", range(4), "dead", block_ms=0)
    assert len(first) == 8
    await bus.ack("42", first[:3])
    # Too recent: a live consumer may still be handling them.
    assert await bus.claim("42", range(4), "heir", min_idle_ms=60_000) == []
    await asyncio.sleep(0.2)
    claimed = await bus.claim("42", range(4), "heir", min_idle_ms=100)
    assert sorted(d.update_id for d in claimed) == sorted(d.update_id for d in first[3:])
    assert await bus.read("42", range(4), "heir", block_ms=0) == []


@needs_redis
async def test_trimming_keeps_what_is_pending_or_unread_and_drops_the_rest(bus: RedisBus):
    chat = 4  # partition 0 of 4
    await bus.append("42", [message(i, chat) for i in range(1, 301)])
    read = await bus.read("42", [0], "w", count=300, block_ms=0)
    await bus.ack("42", read[:250])
    await bus.trim("42", [0])
    raw = bus.redis
    left = await raw.xrange(stream_key("42", 0))
    # Approximate trimming drops whole nodes: never anything pending, and most of the rest.
    assert len(left) < 300
    kept = {json.loads(fields[b"u"])["update_id"] for _, fields in left}
    assert set(range(251, 301)) <= kept
    await bus.ack("42", read[250:])
    await bus.append("42", [message(301, chat)])
    await bus.read("42", [0], "w", block_ms=0)
    await bus.trim("42", [0])
    assert await bus.backlog("42") < 150


async def test_the_in_process_bus_keeps_the_same_promises():
    bus = InProcessBus(partitions=4)
    assert await bus.append("9", [message(1, 1), message(2, 2)], polled=True) == 2
    assert await bus.append("9", [message(2, 2), message(3, 1)], polled=True) == 1
    got = await bus.read("9", range(4), "a", block_ms=0)
    assert sorted(d.update_id for d in got) == [1, 2, 3]
    await bus.ack("9", got[:1])
    claimed = await bus.claim("9", range(4), "b", min_idle_ms=0)
    assert sorted(d.update_id for d in claimed) == [2, 3]


@needs_redis
async def test_streams_deleted_under_a_worker_are_created_again(bus: RedisBus):
    """A Redis restarted without persistence (or a flushed database) drops the streams
    and their groups: the worker's next reads create them again rather than failing
    NOGROUP until the process restarts."""
    await bus.append("42", [message(1, 1)], polled=True)
    assert [d.update_id for d in await bus.read("42", range(4), "c1", block_ms=0)] == [1]
    await bus.redis.flushdb()
    await bus.append("42", [message(2, 1)], polled=True)
    with pytest.raises(Exception, match="NOGROUP"):
        await bus.read("42", range(4), "c1", block_ms=0)
    assert [d.update_id for d in await bus.read("42", range(4), "c1", block_ms=0)] == [2]
    assert await bus.claim("42", range(4), "c2", min_idle_ms=0) != []


@needs_redis
async def test_membership_sees_processes_join_and_expire(bus: RedisBus):
    a, b = Membership(bus.redis, "a"), Membership(bus.redis, "b")
    await a.beat()
    assert await b.beat() == ["a", "b"]
    await b.leave()
    assert await a.beat() == ["a"]


# --- two supervisors on one bus against the emulator ------------------------------------


@needs_redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_db_threads")
async def test_two_processes_split_the_bots_and_one_takes_over_when_the_other_stops(
        emulator, redis: RedisServer, tmp_path):
    bots = [emulator.create_bot(username=f"shared{i}_bot") for i in range(4)]
    for bot in bots:
        await sync_to_async(make_bot)(bot.token, username=bot.username)
    runs: list[tuple[Supervisor, asyncio.Event, asyncio.Task[None], RedisBus]] = []
    for _ in range(2):
        bus = RedisBus(redis.url(), partitions=4)
        # Each "process" has its own lock table, as separate processes would.
        supervisor = Supervisor(options(tmp_path, bus=bus, locks=FileLocks(tmp_path / "locks"),
                                        reconcile_interval=0.3))
        stop = asyncio.Event()
        runs.append((supervisor, stop, asyncio.create_task(supervisor.run(stop)), bus))
    try:
        async def split_two_two() -> bool:
            polled = [sorted(pk for pk, r in s.runners.items() if r.polls) for s, *_ in runs]
            return [len(p) for p in polled] == [2, 2]

        await eventually(split_two_two, within=30)
        # Every bot answers, whichever process handles the group's partition.
        await asyncio.gather(*(ping(emulator, bot) for bot in bots))
        # ...and the pings went through the streams (one per bot and group's partition).
        groups_read = 0
        for bot in bots:
            for partition in range(4):
                with contextlib.suppress(Exception):
                    info = await runs[0][3].redis.xinfo_groups(stream_key(bot.id, partition))
                    groups_read += sum(g["entries-read"] or 0 for g in info)
        assert groups_read >= 4

        # The first process stops: the second polls all four and still answers.
        first, stop, task, _ = runs[0]
        stop.set()
        await asyncio.wait_for(task, 30)

        async def all_on_second() -> bool:
            second = runs[1][0]
            return sum(1 for r in second.runners.values() if r.polls) == 4

        await eventually(all_on_second, within=30)
        await asyncio.gather(*(ping(emulator, bot) for bot in bots))
    finally:
        for _, stop, task, bus in runs:
            stop.set()
            await asyncio.wait_for(task, 30)
            await bus.close()


@needs_redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_db_threads")
async def test_a_process_started_while_redis_is_away_takes_nothing_and_joins_when_it_answers(
        emulator, tmp_path, caplog):
    """Alone, it would take every bot's partitions and fight the others once Redis is
    back: it waits, says so on every pass, and starts its share when Redis answers."""
    bot = emulator.create_bot(username="patient_bot")
    await sync_to_async(make_bot)(bot.token, username=bot.username)
    port = free_port()  # nothing listens here yet
    bus = RedisBus(f"redis://127.0.0.1:{port}/0", partitions=2, timeout=0.5)
    supervisor = Supervisor(options(tmp_path, bus=bus, reconcile_interval=0.2))
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    server = None
    try:
        await asyncio.sleep(1.5)
        assert supervisor.runners == {}
        assert caplog.text.count("bus.not_joined") >= 2  # loudly, on every pass

        server = await sync_to_async(RedisServer.start)(port)

        async def polls_and_works_both_partitions() -> bool:
            runner = next(iter(supervisor.runners.values()), None)
            return runner is not None and runner.polls and runner.partitions == {0, 1}

        await eventually(polls_and_works_both_partitions, within=30)
        await ping(emulator, bot)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await bus.close()
        if server is not None:
            server.stop()


# --- any web worker takes any bot's webhook ---------------------------------------------


def web_worker(bus: RedisBus) -> httpx.AsyncClient:
    """A web worker's route, with no bot of its own: its table appends to the bus."""
    route = webhook.asgi_router(_not_django, webhook.WebhookReceivers(bus=bus))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=route), base_url="http://web")


async def _not_django(scope, receive, send) -> None:
    raise AssertionError("webhook paths never reach Django")


async def deliver(http: httpx.AsyncClient, telegram_id: int, body: dict[str, Any]) -> int:
    response = await http.post(
        webhook.webhook_path(telegram_id), content=json.dumps(body).encode(),
        headers={"X-Telegram-Bot-Api-Secret-Token": webhook.webhook_secret(telegram_id)})
    return response.status_code


@needs_redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_db_threads")
async def test_a_web_worker_without_the_bot_appends_its_webhook_and_a_runbot_answers(
        emulator, redis: RedisServer, tmp_path, settings):
    settings.WEBHOOK_SECRET = "bus-webhook-secret"
    bot = emulator.create_bot(username="hooked_bot")
    await sync_to_async(make_bot)(bot.token, username=bot.username)
    user = emulator.create_user("Pinger")
    group = emulator.create_supergroup("Hooked", creator=user)
    emulator.add_bot(group, bot, by=user)
    runbot_bus, web_bus = RedisBus(redis.url(), 4), RedisBus(redis.url(), 4)
    supervisor = Supervisor(options(tmp_path, bus=runbot_bus, reconcile_interval=0.3))
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        await eventually(lambda: _running(supervisor), within=30)
        since = len(emulator.calls)
        ping_update = {"update_id": 990001, "message": {
            "message_id": 77, "date": 1_700_000_000, "text": "ping",
            "chat": {"id": group.id, "type": "supergroup", "title": "Hooked"},
            "from": {"id": user.id, "is_bot": False, "first_name": "Pinger"}}}
        async with web_worker(web_bus) as http:
            assert await deliver(http, bot.id, ping_update) == 200
            # Not a configured bot: 404, nothing appended.
            assert await deliver(http, 4242, {**ping_update, "update_id": 1}) == 404
        await emulator.wait_for_call("sendMessage", timeout=15, since=since,
                                     chat_id=group.id, text="pong")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await runbot_bus.close()
    # Redis refuses: Telegram gets a 503 and delivers again later.
    redis.pause()
    try:
        web_bus.timeout = 0.5
        async with web_worker(web_bus) as http:
            assert await deliver(http, bot.id, {**ping_update, "update_id": 990002}) == 503
    finally:
        redis.resume()
        await web_bus.close()


async def _running(supervisor: Supervisor) -> bool:
    return any(r.ready.is_set() for r in supervisor.runners.values())


async def test_concurrent_single_appends_share_round_trips_and_share_a_refusal():
    class Counting(InProcessBus):
        calls = 0
        refuse = False

        async def append(self, bot_key, batch, *, polled=False):
            self.calls += 1
            await asyncio.sleep(0.01)  # a round trip
            if self.refuse:
                raise BusUnavailable("refused")
            return await super().append(bot_key, batch, polled=polled)

    bus = Counting(partitions=4)
    appender = GroupAppend(bus, "5")
    await asyncio.gather(*(appender.append(message(i, i)) for i in range(64)))
    assert await bus.backlog("5") == 64
    assert bus.calls <= 3
    bus.refuse = True
    results = await asyncio.gather(*(appender.append(message(i, i)) for i in range(100, 110)),
                                   return_exceptions=True)
    assert all(isinstance(r, BusUnavailable) for r in results)


@needs_redis
async def test_an_entry_that_is_not_an_update_is_dropped_not_claimed_forever(bus: RedisBus):
    await bus.redis.xadd(stream_key("42", 1), {"u": b"not json"})
    await bus.append("42", [message(5, 1)])
    got = await bus.read("42", [1], "w", block_ms=0)
    assert [d.update_id for d in got] == [5]
    assert (await bus.redis.xpending(stream_key("42", 1), "engine"))["pending"] == 1
