"""Three runbot processes on one busy bot, beside one process, in the same run.

    .venv/bin/python benchmarks/scale_processes.py [--messages 20000] [--groups 6]

The production shape on servers of the benchmark's own (tests/faults: a
throw-away PostgreSQL cluster, a redis-server, the Bot API emulator in this
process, `manage.py runbot --no-web` children with NEZUKO_UPDATE_BUS=redis).
One bot protects `--groups` groups; in each a known subscriber talks.

1. one runbot process: it polls the bot and works all 8 partitions;
2. two more processes join: the partitions spread over the three (each
   process logs its share), one of them still polls.

For each: `--messages` group messages waiting at once, spread over the groups,
and the time until the bus's consumer group acknowledged all of them (each was
decided by the fast path where its chat's partition is worked): decided/s.
Before each measure every process learns the talkers of its chats (warm-up
rounds until a round asks Telegram nothing). It prints the figures and the
load average; it asserts nothing. The emulator, this process and the runbots
share the machine's cores: the one-process figure is the bound the
three-process one is printed against.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asgiref.sync import sync_to_async  # noqa: E402

import benchmarks.scratch  # noqa: E402, F401  (sets Django up)
from bots.bus import GROUP, stream_key  # noqa: E402
from bots.emulator import TelegramEmulator  # noqa: E402
from bots.emulator.scene import make_scene  # noqa: E402
from bots.tests.runtime_support import MANAGE, child_env  # noqa: E402
from tests.faults.harness import (  # noqa: E402
    FaultWorld,
    Runbot,
    forget_database,
    register_database,
)
from tests.faults.servers import PostgresCluster, redis_server  # noqa: E402

PARTITIONS = 8
BUS = {"NEZUKO_UPDATE_BUS": "redis", "NEZUKO_BUS_PARTITIONS": str(PARTITIONS),
       "LOG_LEVEL": "INFO"}
ALIAS = "bench"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


async def counts(world: FaultWorld, bot_id: int) -> tuple[int, int]:
    """(entries appended, entries the consumer group read and acknowledged) over the
    bot's partitions."""
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.from_url(world.redis.url())
    try:
        added = acked = 0
        for partition in range(PARTITIONS):
            key = stream_key(str(bot_id), partition)
            if not await client.exists(key):
                continue
            added += (await client.xinfo_stream(key)).get("entries-added", 0)
            for group in await client.xinfo_groups(key):
                if group["name"] in (GROUP, GROUP.encode()):
                    acked += (group.get("entries-read") or 0) - group["pending"]
        return added, acked
    finally:
        await client.aclose()


async def acknowledged(world: FaultWorld, bot_id: int) -> int:
    return (await counts(world, bot_id))[1]


async def wait_acknowledged(world: FaultWorld, bot_id: int, target: int,
                            within: float = 300.0) -> float | None:
    """Wait until `target` were acknowledged; returns when (perf_counter) the
    appended count passed the same target on the way, if it was seen."""
    deadline = time.monotonic() + within
    appended_at = None
    while True:
        added, acked = await counts(world, bot_id)
        if appended_at is None and added >= target:
            appended_at = time.perf_counter()
        if acked >= target:
            return appended_at
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target - acked} never acknowledged")
        await asyncio.sleep(0.02)


async def warm(world: FaultWorld, bot_id: int, talkers: list) -> None:
    """Rounds of one message per talker until a round asks Telegram nothing: every
    process working a chat's partition knows its talker (its own cache)."""
    emu = world.emulator
    for round_number in range(12):
        asked = sum(1 for c in emu.calls if c.method == "getChatMember")
        before = await acknowledged(world, bot_id)
        for chat, person in talkers:
            emu.send_message(chat, person, f"warm-up {round_number}")
        await wait_acknowledged(world, bot_id, before + len(talkers))
        await asyncio.sleep(0.3)
        if sum(1 for c in emu.calls if c.method == "getChatMember") == asked:
            return
    print("  warning: the talkers were still being checked after 12 warm-up rounds")


async def decided_rate(world: FaultWorld, bot_id: int, talkers: list, count: int,
                       runbots: list[Runbot]) -> tuple[float, float, str]:
    """(decided/s, appended/s, CPU by process): the second is the poller's pace into
    the bus, held to the deciding by the back-pressure once 5,000 wait."""
    emu = world.emulator
    await warm(world, bot_id, talkers)
    cpu_before = cpu_seconds(runbots)
    added, acked = await counts(world, bot_id)
    # Every earlier entry is acknowledged by now, so the two counts meet at one target.
    assert added == acked, (added, acked)
    for i in range(count):
        chat, person = talkers[i % len(talkers)]
        emu.send_message(chat, person, f"busy {i}")
    start = time.perf_counter()
    appended_at = await wait_acknowledged(world, bot_id, acked + count)
    elapsed = time.perf_counter() - start
    return (count / elapsed, count / ((appended_at or time.perf_counter()) - start),
            busy(runbots, cpu_before, elapsed))


def cpu_seconds(runbots: list[Runbot]) -> list[float]:
    """User + system CPU each runbot child used so far (/proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = []
    for runbot in runbots:
        assert runbot.child is not None
        fields = Path(f"/proc/{runbot.child.process.pid}/stat").read_text().rsplit(")", 1)[1]
        utime, stime = fields.split()[11:13]
        out.append((int(utime) + int(stime)) / ticks)
    return out


def busy(runbots: list[Runbot], before: list[float], seconds: float) -> str:
    """Each process's share of one core over the measure."""
    used = [after - b for after, b in zip(cpu_seconds(runbots), before, strict=True)]
    return "CPU " + " + ".join(f"{u / seconds:.0%}" for u in used) + " of a core"


def shares(runbots: list[Runbot]) -> list[int]:
    """Each process's partition count, from its last `bus.partitions` log line."""
    import re

    out = []
    for runbot in runbots:
        lines = [line for line in runbot.log().splitlines() if "bus.partitions" in line]
        found = re.findall(r"partitions=\[([\d, ]*)\]", lines[-1]) if lines else []
        out.append(len([p for p in found[0].split(",") if p.strip()]) if found else 0)
    return out


async def spread_over(runbots: list[Runbot], within: float = 60.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        now = shares(runbots)
        if sum(now) == PARTITIONS and all(now):
            return now
        await asyncio.sleep(0.5)
    return shares(runbots)


def migrated_cluster() -> PostgresCluster:
    import subprocess

    cluster = PostgresCluster.create()
    cluster.start()
    cluster.psql("CREATE DATABASE nezuko")
    migrate = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, MANAGE, "migrate", "--noinput", "-v0"],
        env=child_env(DATABASE_URL=cluster.url(), REDIS_URL="", LOG_LEVEL="WARNING"),
        capture_output=True, text=True, timeout=600,
    )
    if migrate.returncode:
        raise RuntimeError(migrate.stdout + migrate.stderr)
    return cluster


async def bench(count: int, groups: int) -> None:
    cluster = await asyncio.to_thread(migrated_cluster)
    emu = TelegramEmulator()
    await emu.start()
    try:
        with redis_server() as redis:
            register_database(ALIAS, cluster.url())
            scene = make_scene(emu)
            world = FaultWorld(emu, scene, cluster, redis, ALIAS)
            await sync_to_async(world.seed)()
            chats = [scene.group] + [await sync_to_async(world.add_group)(f"Busy {i}")
                                     for i in range(1, groups)]
            talkers = []
            for number, chat in enumerate(chats):
                person = emu.create_user(f"Talker {number}")
                emu.join(scene.channel, person)
                emu.join(chat, person)
                talkers.append((chat, person))
            try:
                await measure(world, scene.bot.id, talkers, count)
            finally:
                await world.close()
                await sync_to_async(forget_database)(ALIAS)
    finally:
        await emu.stop()
        cluster.destroy()


async def measure(world: FaultWorld, bot_id: int, talkers: list, count: int) -> None:
    first = world.runbots(1, **BUS)
    await first[0].start()
    print(f"one busy bot, {len(talkers)} groups, {count} messages waiting at once, "
          f"decided by the fast path on the bus:")
    one, polled, cpu = await decided_rate(world, bot_id, talkers, count, first)
    print(f"  1 runbot process                 {one:>8,.0f} decided/s (its poller into "
          f"the bus {polled:,.0f}/s; {cpu}; {load()})")
    more = world.runbots(2, **BUS)
    await asyncio.gather(*(runbot.start() for runbot in more))
    spread = await spread_over(first + more)
    three, polled, cpu = await decided_rate(world, bot_id, talkers, count, first + more)
    print(f"  3 runbot processes               {three:>8,.0f} decided/s "
          f"({three / one:.2f} x one process; the poller into the bus {polled:,.0f}/s; "
          f"partitions {'/'.join(map(str, spread))}; {cpu}; {load()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=6)
    args = parser.parse_args()
    asyncio.run(bench(args.messages, args.groups))


if __name__ == "__main__":
    main()
