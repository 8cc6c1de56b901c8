"""Membership kept fresh by updates: what steady state, background work and a cold
start cost in Telegram calls, time and memory. Printed side by side, bounded.

    .venv/bin/python benchmarks/freshness.py [--users 500] [--groups 10000]
                                             [--known 100000] [--compress 20]

Against the Bot API emulator in this process, on a throw-away SQLite database.
Set NEZUKO_BENCH_REDIS_URL (e.g. redis://127.0.0.1:6379/11) for part 3: the
bulk load at start-up reads Redis; without it part 3 is skipped. It prints
figures; it asserts nothing.

1. steady state: `--users` subscribers each speak every 5 simulated minutes;
   the membership cache runs on a hand-moved clock, so hours pass in seconds.
   getChatMember calls per active user per hour once steady (after the first
   TTL): answers for 10 minutes (old), NEZUKO_MEMBERSHIP_TTL of 6 h with
   background refreshes (the default before), and 12 h (the default now).
   Foreground calls (a person's message waited, P0) and background ones (P2)
   are counted apart, with the busiest steady 5-minute step beside what the
   limiter lets through in 5 minutes.
2. background work for `--groups` groups, a third of them active in the last
   hour: the 15-minute check-up through the production limiter, time
   compressed `--compress` times (limiter rate and interval scaled alike), with
   a burst of enforcement (P1) in the middle. Before: every group at once at
   the priority /doctor's reads ask for (P0). After: active groups only,
   spread, at P2. Calls and the limiter's queue by priority per (real) minute.
3. cold start: `--known` members known in the database and in Redis; the
   runtime starts fresh and each sends a first message (raw updates fed to
   the runner, as polling does). First messages per second and RSS growth,
   without the start-up bulk loads and with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402
from telegram import Bot  # noqa: E402
from telegram.ext import ExtBot  # noqa: E402

from benchmarks.scratch import DB, protect, register  # noqa: E402  (sets Django up)
from bots.emulator import TelegramEmulator  # noqa: E402
from bots.emulator.scene import make_scene  # noqa: E402
from bots.locks import FileLocks  # noqa: E402
from bots.ratelimit import Limits, Priority, TelegramRateLimiter  # noqa: E402
from bots.testing import supervised  # noqa: E402
from groups.config import configs  # noqa: E402
from groups.models import EnforcedChannel, GroupChannel, GroupMember, ProtectedGroup  # noqa: E402
from nezuko.runtime import runtime_options  # noqa: E402
from verification import maintenance, telegram_reads  # noqa: E402
from verification.commands import Commands  # noqa: E402
from verification.engine import Engine  # noqa: E402
from verification.membership import MembershipCache, memberships  # noqa: E402

STEP = 300.0  # simulated seconds between two messages of one member
OVERALL_PER_SECOND = 30.0  # the limiter's (and Telegram's) overall rate per bot
HOUR = 3600.0
# Cold start: updates fed ahead of the handlers, bounded as polling's back-pressure
# bounds them (and as the journal's rewrites were once quadratic in a backlog).
IN_FLIGHT = 1_000


class SimClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def member_calls(emu: TelegramEmulator, since: int) -> int:
    return sum(1 for c in emu.calls[since:] if c.method == "getChatMember")


# --- 1. steady state ---------------------------------------------------------------------


async def steady_state(emu, scene, bot_row, users: int) -> None:
    people = [emu.create_user(f"Subscriber {i}") for i in range(users)]
    for person in people:
        emu.join(scene.channel, person)
    config = await sync_to_async(configs.get)(bot_row.pk, scene.group.id)
    default_ttl = settings.NEZUKO_MEMBERSHIP_TTL
    # What the limiter lets through in one 5-minute step: the queue a step's calls make.
    per_step = OVERALL_PER_SECOND * STEP
    print(f"1. steady state: {users} subscribers, one message each every "
          f"{STEP / 60:.0f} simulated minutes, one linked channel; the busiest steady "
          f"5-minute step beside the {per_step:,.0f} calls the limiter allows in one")
    print("   answers live          | simulated | fg calls | bg calls | calls/user/hour "
          "(steady)        | busiest step fg (P0) + bg (P2)")
    for label, ttl, refresh, hours, warm in (
        ("10 min (old)", 600, False, 3, 1),
        ("6 h + refresh (before)", 6 * 3600, True, 26, 8),
        ("12 h + refresh (now)", 12 * 3600, True, 50, 14),
    ):
        settings.NEZUKO_MEMBERSHIP_TTL = ttl
        clock = SimClock()
        bot = Bot(scene.bot.token, base_url=f"{emu.api_url}/bot")
        async with bot:
            engine = Engine(bot_pk=bot_row.pk, bot_telegram_id=scene.bot.id, bot=bot,
                            memberships=MembershipCache(clock, shared=False))
            fg = bg = steady_calls = 0
            busiest = (0, 0)
            for step in range(int(hours * HOUR / STEP)):
                clock.now += STEP
                since = len(emu.calls)
                for person in people:
                    if engine.peek(person.id, config.channels) is None:
                        await telegram_reads.check(engine, person.id, config.channels)
                step_fg = member_calls(emu, since)
                since = len(emu.calls)
                if refresh:
                    while await telegram_reads.refresh_due(engine):
                        pass
                step_bg = member_calls(emu, since)
                fg, bg = fg + step_fg, bg + step_bg
                if step * STEP >= warm * HOUR:
                    steady_calls += step_fg + step_bg
                    busiest = max(busiest, (step_fg, step_bg), key=sum)
        steady_hours = hours - warm
        print(f"   {label:<22} | {hours:>7} h | {fg:>8,} | {bg:>8,} | "
              f"{steady_calls / users / steady_hours:.3f} (hours {warm}-{hours}) | "
              f"{busiest[0]} + {busiest[1]} ({sum(busiest) / per_step:.4f} of the limiter)")
    settings.NEZUKO_MEMBERSHIP_TTL = default_ttl


# --- 2. background work -------------------------------------------------------------------


def make_groups(bot_row, count: int) -> list[int]:
    """`count` protected groups, each with its own public channel; their chat ids."""
    base = ProtectedGroup.objects.filter(bot=bot_row).count()
    groups = ProtectedGroup.objects.bulk_create(
        ProtectedGroup(bot=bot_row, chat_id=-1_005_000_000_000 - i, title=f"Group {i}")
        for i in range(base, base + count)
    )
    channels = EnforcedChannel.objects.bulk_create(
        EnforcedChannel(bot=bot_row, chat_id=-1_006_000_000_000 - i, title=f"Channel {i}",
                        username=f"chan{i}")
        for i in range(base, base + count)
    )
    GroupChannel.objects.bulk_create(
        GroupChannel(group=g, channel=c) for g, c in zip(groups, channels, strict=True)
    )
    return [g.chat_id for g in groups]


async def background(emu, scene, bot_row, groups: int, compress: float) -> None:
    chat_ids = await sync_to_async(make_groups)(bot_row, groups)
    await sync_to_async(configs.preload)(bot_row.pk)
    interval = maintenance.CHECKUP_INTERVAL / compress
    print(f"\n2. background: {groups:,} groups, {groups // 3:,} active in the last hour; "
          f"time compressed x{compress:g} (limiter {30 * compress:,.0f}/s, check-up "
          f"interval {interval:.0f} s); a burst of P1 enforcement in the middle")
    for label, after in (("before: every group at once, P0", False),
                         ("after: active only, spread, P2", True)):
        limiter = TelegramRateLimiter(Limits(overall_per_second=30.0 * compress,
                                             max_queue=(100_000,) * 3), name="bench")
        bot = ExtBot(scene.bot.token, base_url=f"{emu.api_url}/bot", rate_limiter=limiter)
        async with bot:
            engine = Engine(bot_pk=bot_row.pk, bot_telegram_id=scene.bot.id, bot=bot)
            for chat_id in chat_ids[: groups // 3]:
                engine.note_activity(chat_id)
            stop = asyncio.Event()
            if after:
                spread = interval * maintenance.CHECKUP_SPREAD
                round_ = maintenance.checkup(engine, spread_over=spread, stop=stop)
            else:
                round_ = Commands(engine).checkup()
            await _watch(emu, engine, limiter, round_, stop, interval, compress, label)


async def _watch(emu, engine, limiter, round_, stop, interval, compress, label) -> None:
    """Run one check-up round for one (compressed) interval beside a P1 burst; print
    calls and the deepest queue by priority every other compressed minute."""
    levels = ("P0", "P1", "P2")
    start = {p: _waited(p) for p in levels}
    waited = dict(start)
    deepest = [0, 0, 0]

    async def sample() -> None:
        while True:
            for level in Priority:
                deepest[level] = max(deepest[level], limiter.depth(level))
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    task = asyncio.create_task(round_)
    burst = asyncio.create_task(_enforcement_burst(engine, interval / 2, compress))
    minute = 60.0 / compress
    minutes = int(interval / minute)
    print(f"   {label}")
    print("     minute | calls  P0    P1    P2 | deepest queue P0  P1  P2")
    rows = []
    for m in range(minutes):
        await asyncio.sleep(minute)
        now = {p: _waited(p) for p in levels}
        calls = [now[p] - waited[p] for p in levels]
        waited = now
        rows.append((m + 1, calls, list(deepest)))
        deepest[:] = [0, 0, 0]
    for m, calls, depth in rows:
        if m % 2 == 1 or m == minutes:
            print(f"     {m:>6} | {calls[0]:>9,.0f} {calls[1]:>5,.0f} {calls[2]:>5,.0f} | "
                  f"{depth[0]:>16,} {depth[1]:>3,} {depth[2]:>3,}")
    total = {p: waited[p] - start[p] for p in levels}
    budget = 30.0 * compress * interval
    print(f"     over the interval: P0 {total['P0']:,.0f}, P1 {total['P1']:,.0f}, "
          f"P2 {total['P2']:,.0f} calls; check-up = "
          f"{(total['P0'] + total['P2']) / budget:.0%} of the bot's budget")
    stop.set()
    for running in (burst, task, sampler):
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running


async def _enforcement_burst(engine, delay: float, compress: float) -> None:
    """Membership checks at P1 for a (compressed) minute: a raid's reads."""
    await asyncio.sleep(delay)
    end = asyncio.get_running_loop().time() + 60.0 / compress

    async def one(user_id: int) -> None:
        with contextlib.suppress(Exception):
            await telegram_reads.fetch_membership(engine, -1_006_000_000_000, user_id, "P1")

    user = 0
    while asyncio.get_running_loop().time() < end:
        await asyncio.gather(*(one(user + i) for i in range(20)))
        user += 20


def _waited(priority: str) -> float:
    """Calls the limiter let through at `priority` so far (its wait histogram's count)."""
    return REGISTRY.get_sample_value("nezuko_limiter_wait_seconds_count",
                                     {"priority": priority}) or 0.0


# --- 3. cold start -------------------------------------------------------------------------


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def know_members(group, channel_id: int, bot_id: int, count: int) -> None:
    """`count` members in the ledger and "subscribed" in the shared cache, as a
    process that ran for a while leaves them."""
    GroupMember.objects.filter(group=group).delete()
    for start in range(0, count, 5_000):
        GroupMember.objects.bulk_create(
            GroupMember(group=group, user_id=2_000_000_000 + u, first_name=f"Known {u}")
            for u in range(start, min(count, start + 5_000))
        )
    writer = MembershipCache()
    for u in range(count):
        writer.remember((bot_id, channel_id, 2_000_000_000 + u), True)


def first_message(update_id: int, chat_id: int, user_id: int) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000, "text": "hello again",
        "chat": {"id": chat_id, "type": "supergroup", "title": "Cats"},
        "from": {"id": user_id, "is_bot": False, "first_name": "Known"}}}


async def cold_start(emu, scene, bot_row, known: int, loads: bool) -> None:
    """One variant in this (fresh) process, so RSS growth is its own."""
    from django.core.cache import cache

    if not hasattr(cache, "iter_keys"):
        print("   skipped: set NEZUKO_BENCH_REDIS_URL (the bulk load reads Redis)")
        return
    group = await sync_to_async(ProtectedGroup.objects.get)(bot=bot_row, chat_id=scene.group.id)
    await sync_to_async(know_members)(group, scene.channel.id, scene.bot.id, known)
    memberships.clear_local()
    configs.clear()
    if not loads:
        async def no_loads(engine):
            return 0, 0
        maintenance.start_up = no_loads
    options = runtime_options()
    options.api_url, options.webhook_url = emu.api_url, ""
    options.locks = FileLocks(DB.parent / "locks")
    rss = rss_mib()
    async with supervised(options, bot_row.pk) as runner:
        started = time.perf_counter()
        if loads:
            while len(memberships) < known:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        loaded = time.perf_counter() - started
        handled = runner.heartbeat.updates_handled
        for u in range(known):
            # At most IN_FLIGHT ahead of the handlers, as polling's batches keep it.
            while u - (runner.heartbeat.updates_handled - handled) > IN_FLIGHT:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            await runner.feed(first_message(90_000_000 + u, scene.group.id, 2_000_000_000 + u))
        while runner.heartbeat.updates_handled - handled < known:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await runner.application.update_queue.join()
        elapsed = time.perf_counter() - started
        await runner.engine.idle()
        label = "with the start-up loads (after)" if loads else "without them (before)"
        print(f"   {label:<31}: {known / elapsed:>7,.0f} first messages/s "
              f"({elapsed:.1f} s, loading {loaded:.1f} s of it); RSS +{rss_mib() - rss:,.0f} MiB")


async def cold_starts(known: int) -> None:
    print(f"\n3. cold start: {known:,} members known (ledger rows, answers in Redis); the "
          "runtime starts fresh and each sends a first message (each variant in its own process)")
    for variant in ("without", "with"):
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--users", "0", "--groups", "0", "--known", str(known),
            "--cold-variant", variant, stdout=asyncio.subprocess.PIPE)
        out, _ = await child.communicate()
        print(out.decode().rstrip())


async def bench(users: int, groups: int, known: int, compress: float,
                cold_variant: str = "") -> None:
    if known and not cold_variant:
        await cold_starts(known)
        known = 0
    emu = TelegramEmulator()
    await emu.start()
    scene = make_scene(emu)
    bot_row = await sync_to_async(register)(scene.bot.token, emu.api_url)
    await sync_to_async(protect)(bot_row, scene.group, scene.channel, [scene.alice, scene.bot])
    try:
        if users:
            await steady_state(emu, scene, bot_row, users)
        if known:
            await cold_start(emu, scene, bot_row, known, loads=cold_variant == "with")
        if groups:
            await background(emu, scene, bot_row, groups, compress)
    finally:
        await emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500, help="0 skips part 1")
    parser.add_argument("--groups", type=int, default=10_000, help="0 skips part 2")
    parser.add_argument("--known", type=int, default=100_000, help="0 skips part 3")
    parser.add_argument("--compress", type=float, default=20.0)
    parser.add_argument("--cold-variant", choices=("with", "without"), default="",
                        help=argparse.SUPPRESS)  # one part-3 variant, run as a child
    args = parser.parse_args()
    if not os.environ.get("NEZUKO_BENCH_REDIS_URL") and not args.cold_variant:
        print("(NEZUKO_BENCH_REDIS_URL not set: part 3 needs Redis)")
    call_command("migrate", verbosity=0)
    asyncio.run(bench(args.users, args.groups, args.known, args.compress, args.cold_variant))


if __name__ == "__main__":
    main()
