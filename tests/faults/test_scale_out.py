"""Three runbot processes on the update bus (NEZUKO_UPDATE_BUS=redis), one killed.

What each test prints, and asserts:

* six bots on three processes: the pollers spread 2/2/2 (counted from the
  advisory locks PostgreSQL holds per process), and a process killed with
  SIGKILL has its bots polled by the others within 15 s (takeover seconds);
* one busy bot in six protected groups across three processes: raids in every
  group, then more raids while one process is killed: every non-subscriber
  muted (lost), nobody muted twice (doubled), no update handled twice while no
  process died, each chat's updates handled in order by each process, and the
  work done by more than one process. Handled twice after the kill is printed:
  updates the dead process had in hand go to another (at least once), and the
  restriction ledger makes the second handling harmless (doubled stays 0).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter, defaultdict
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections

from bots.emulator.state import User
from bots.tests.runtime_support import eventually
from tests.faults.harness import FaultWorld, Runbot, figures, settle

BUS = {"NEZUKO_UPDATE_BUS": "redis", "NEZUKO_BUS_PARTITIONS": "8", "LOG_FORMAT": "json"}
TAKEOVER_PROMISE_SECONDS = 15.0


def poll_shares(world: FaultWorld) -> list[int]:
    """Bots each runbot process polls: its advisory locks, sorted."""
    with connections[world.alias].cursor() as cursor:
        cursor.execute(
            "SELECT l.pid, count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND a.application_name = 'nezuko-runbot-locks' GROUP BY l.pid"
        )
        shares = sorted(count for _, count in cursor.fetchall())
    connections[world.alias].close()
    return shares


def log_events(runbot: Runbot, event: str) -> list[dict[str, Any]]:
    out = []
    for line in runbot.log().splitlines():
        if event not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            out.append(record)
    return out


def dump_logs(runbots: list[Runbot]) -> None:
    """NEZUKO_FAULTS_LOG: every process's own account, for a failing run's report."""
    import os
    from pathlib import Path

    path = os.environ.get("NEZUKO_FAULTS_LOG")
    if path:
        for number, runbot in enumerate(runbots):
            Path(f"{path}.{number}").write_text(runbot.log())


async def start_all(runbots: list[Runbot]) -> None:
    await asyncio.gather(*(runbot.start() for runbot in runbots))


async def test_six_bots_spread_two_each_and_a_killed_process_is_taken_over(
        world: FaultWorld) -> None:
    for i in range(5):
        await sync_to_async(world.add_bot)(f"extra{i}_bot")
    runbots = world.runbots(3, **BUS)
    await start_all(runbots)

    async def shares_are(expected: list[int]) -> bool:
        return await sync_to_async(poll_shares)(world) == expected

    await eventually(lambda: shares_are([2, 2, 2]), within=60)
    spread = await sync_to_async(poll_shares)(world)

    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    await runbots[0].kill(signal.SIGKILL)
    await eventually(lambda: shares_are([3, 3]), within=45)
    takeover = loop.time() - killed_at
    print("\n3 runbot processes, 6 bots: " + figures(
        spread="/".join(map(str, spread)),
        after_kill="/".join(map(str, await sync_to_async(poll_shares)(world))),
        takeover=takeover))
    assert takeover <= TAKEOVER_PROMISE_SECONDS


def raid_groups(world: FaultWorld, chats: list[Any], per_group: int,
                name: str) -> list[tuple[Any, User]]:
    """`per_group` strangers join each chat, a fifth of them subscribers; returns the
    (chat, person) pairs of the non-subscribers, who must all end up muted."""
    emu, scene = world.emulator, world.scene
    strangers = []
    for number, chat in enumerate(chats):
        people = [emu.create_user(f"{name} {number}.{i}") for i in range(per_group)]
        subscribed = per_group // 5
        for person in people[:subscribed]:
            emu.join(scene.channel, person)
        for person in people:
            emu.join(chat, person)
        strangers += [(chat, person) for person in people[subscribed:]]
    return strangers


def unmuted(world: FaultWorld, pairs: list[tuple[Any, User]]) -> int:
    count = 0
    for chat, person in pairs:
        member = world.emulator.member(chat, person)
        muted = member["status"] == "restricted" and not member.get("can_send_messages", True)
        if not muted and member["status"] not in ("kicked", "left"):
            count += 1
    return count


def doubled_mutes(world: FaultWorld) -> int:
    """(chat, person) muted twice without an unmute between, in any group."""
    muted_now: set[tuple[int, int]] = set()
    doubled: set[tuple[int, int]] = set()
    for call in world.emulator.calls_named("restrictChatMember"):
        if not call.ok:
            continue
        key = (int(call.params["chat_id"]), int(call.params["user_id"]))
        if any((call.params.get("permissions") or {}).values()):
            muted_now.discard(key)
        elif key in muted_now:
            doubled.add(key)
        else:
            muted_now.add(key)
    return len(doubled)


def handled(runbots: list[Runbot]) -> tuple[Counter[int], int, int]:
    """(times each update id was handled, processes that handled any, people whose
    updates in one chat were handled out of order).

    The bus hands a chat's updates over in order; the engine's processor then runs
    one person's updates in order and different people's side by side (as in one
    process), so order is per person in a chat."""
    times: Counter[int] = Counter()
    busy = 0
    out_of_order = 0
    for runbot in runbots:
        records = log_events(runbot, "update.handled")
        busy += bool(records)
        by_chat: dict[tuple[int, int], list[int]] = defaultdict(list)
        for record in records:
            times[record["update_id"]] += 1
            if record.get("chat_id") is not None:
                by_chat[record["chat_id"], record.get("user_id")].append(record["update_id"])
        out_of_order += sum(1 for ids in by_chat.values() if ids != sorted(ids))
    return times, busy, out_of_order


async def test_one_busy_bot_across_three_processes_loses_nothing_and_doubles_nothing(
        world: FaultWorld) -> None:
    chats = [world.scene.group]
    for i in range(5):
        chats.append(await sync_to_async(world.add_group)(f"Cats {i}"))
    runbots = world.runbots(3, **BUS)
    await start_all(runbots)

    async def three_members() -> bool:
        return all(
            any(len(r["members"]) == 3 for r in log_events(runbot, "bus.members"))
            for runbot in runbots
        )

    await eventually(three_members, within=60)

    # First raid: nobody dies.
    first = raid_groups(world, chats, 40, "Raider")

    async def measure(pairs: list[tuple[Any, User]]) -> tuple[int, int]:
        return unmuted(world, pairs), world.activity()

    (lost, _), waited = await settle(lambda: measure(first), lambda v: v[0] == 0,
                                     quiet=15, within=180)
    times, busy, out_of_order = handled(runbots)
    twice = sum(1 for n in times.values() if n > 1)
    print(f"\nbusy bot, 6 groups, 3 processes, raid of {len(first)} non-subscribers: "
          + figures(lost=lost, doubled=doubled_mutes(world), handled_twice=twice,
                    out_of_order=out_of_order, processes_working=busy,
                    updates_handled=len(times), took=waited))
    dump_logs(runbots)
    assert lost == 0
    assert doubled_mutes(world) == 0
    assert twice == 0
    assert out_of_order == 0
    assert busy >= 2, "the busy bot's chats were not spread over the processes"

    # Second raid, and one process is killed in the middle of it.
    second = raid_groups(world, chats, 40, "Second wave")
    total = len(second)

    async def some_muted() -> bool:
        return unmuted(world, second) <= total * 0.8

    await eventually(some_muted, within=120)
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    await runbots[1].kill(signal.SIGKILL)
    (lost, _), _ = await settle(lambda: measure(second), lambda v: v[0] == 0,
                                quiet=20, within=180)
    recovered = loop.time() - killed_at
    times, _, _ = handled([runbots[0], runbots[2]])
    print(f"kill -9 of one process mid-raid ({total} non-subscribers): "
          + figures(lost=lost, doubled=doubled_mutes(world),
                    handled_twice_by_survivors=sum(1 for n in times.values() if n > 1),
                    recovered_in=recovered if lost == 0 else "never"))
    assert lost == 0, f"{lost} of {total} non-subscribers were never restricted"
    assert doubled_mutes(world) == 0
