"""The runtime's figures: throughput, decision latency, a raid under flood limits.

    .venv/bin/python benchmarks/runtime.py [--feed 50000] [--polled 20000] [--raid 1000]
                                           [--webhook 20000]

Runs runbot's composition (the supervisor with the real engine, fast path,
limiter and per-user processor) against the Bot API emulator in this process,
on a throw-away SQLite database. It prints figures; it asserts nothing.

1. ceiling: `json.loads` + `Update.de_json` of one group message, the cost any
   path pays that builds PTB objects for every update.
2. decided/s, warm cache: raw updates from a known subscriber handed to the
   runner's consumer (`take()`, what polling and the webhook route call); then the same
   end to end over HTTP, long polling the emulator.
3. latency at 1,000 updates/s: updates fed on a 1 ms schedule; latency from
   each update's scheduled arrival to its decision (queueing included).
4. raid: N non-subscribers join at once, membership unknown (one getChatMember
   each), emulator flood limits on; time until all are restricted beside the
   lower bound those limits allow; "I've joined" presses during the raid and
   how long until each was answered; where time beyond the limiter's pace went
   (stretches with no call at all; `RAID_GAPS=1` lists the longest).
5. webhook: runbot with web (daphne) in a child process on the same database;
   updates POSTed to its webhook route with the right secret over 64
   connections: updates/s, all decided by the fast path inside the request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asgiref.sync import sync_to_async  # noqa: E402
from django.core.management import call_command  # noqa: E402
from telegram import Bot, Update  # noqa: E402

from benchmarks.scratch import DB, protect, register  # noqa: E402  (sets Django up)
from bots.emulator import TelegramEmulator  # noqa: E402
from bots.emulator.scene import make_scene  # noqa: E402
from bots.locks import FileLocks  # noqa: E402
from bots.supervisor import BotRunner, Supervisor  # noqa: E402
from nezuko.runtime import runtime_options  # noqa: E402

MANAGE = str(Path(__file__).resolve().parent.parent / "manage.py")
OVERALL_PER_SECOND = 30.0  # Telegram's (and the emulator's) overall limit per bot
MENTION = re.compile(r"tg://user\?id=(\d+)")


def group_message(update_id: int, chat_id: int, user_id: int) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "text": "hello everyone",
            "chat": {"id": chat_id, "type": "supergroup", "title": "Cats"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Bob", "username": "bob"},
        },
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ceiling(chat_id: int, user_id: int) -> float:
    """Seconds per update to parse and build a PTB Update (the median of ten runs)."""
    bot = Bot("1:" + "x" * 35)
    body = json.dumps(group_message(1, chat_id, user_id)).encode()
    runs = []
    for _ in range(10):
        start = time.perf_counter()
        for _ in range(2_000):
            Update.de_json(json.loads(body), bot)
        runs.append((time.perf_counter() - start) / 2_000)
    return statistics.median(runs)


async def settle(emu: TelegramEmulator, bot, probe) -> None:
    """Every update sent so far is handled once the bot answered a later /help."""
    since = len(emu.calls)
    emu.send_message(bot, probe, "/help")
    await emu.wait_for_call("sendMessage", timeout=300, since=since, chat_id=probe.id)


async def feed_rate(runner: BotRunner, chat_id: int, user_id: int, count: int) -> float:
    raws = [group_message(50_000_000 + i, chat_id, user_id) for i in range(count)]
    # Serialised as Telegram sends them: parsing is part of the cost.
    bodies = [json.dumps(raw).encode() for raw in raws]
    start = time.perf_counter()
    for index, body in enumerate(bodies):
        await runner.consumer.take([json.loads(body)])
        if index % 100 == 99:
            # A getUpdates batch is 100: handlers for any slow-path update run between.
            await asyncio.sleep(0)
    return count / (time.perf_counter() - start)


async def paced_latency(runner: BotRunner, chat_id: int, user_id: int, seconds: float) -> list:
    """Feed 1,000 updates a second; latency from each one's due time to its decision."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    start = loop.time()
    total = int(seconds * 1_000)
    for i in range(total):
        due = start + i / 1_000
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        body = json.dumps(group_message(60_000_000 + i, chat_id, user_id)).encode()
        await runner.consumer.take([json.loads(body)])
        latencies.append(loop.time() - due)
    return latencies


async def raid(emu: TelegramEmulator, scene, count: int) -> None:
    emu.flood_limits = True
    before = len(emu.calls)
    raiders = [emu.create_user(f"Raider {i}") for i in range(count)]
    presses: list[float] = []
    start, wall_start = time.perf_counter(), time.time()
    for raider in raiders:
        emu.join(scene.group, raider)

    async def press_now_and_then() -> None:
        pressed: set[int] = set()
        while True:
            await asyncio.sleep(1.0)
            for message in reversed(emu.messages(scene.group)):
                button = _joined_button(message)
                links = " ".join(e.get("url", "") for e in message.get("entities", []))
                named = [int(i) for i in MENTION.findall(links)]
                person = next((i for i in named if i not in pressed), None)
                if button is None or person is None:
                    continue
                pressed.add(person)
                since = len(emu.calls)
                t0 = time.perf_counter()
                query = emu.press_button(scene.group, message["message_id"], person, button)
                await emu.wait_for_call(
                    "answerCallbackQuery", timeout=60, since=since, callback_query_id=query
                )
                presses.append(time.perf_counter() - t0)
                break

    presser = asyncio.create_task(press_now_and_then())
    for raider in raiders:
        await emu.wait_for_call("restrictChatMember", timeout=600, user_id=raider.id)
    elapsed = time.perf_counter() - start
    presser.cancel()
    calls = [c for c in emu.calls[before:] if c.method != "getUpdates"]
    methods = {m: sum(1 for c in calls if c.method == m) for m in {c.method for c in calls}}
    flood = sum(1 for c in calls if c.error_code == 429)
    bound = len(calls) / OVERALL_PER_SECOND
    print(
        f"raid: {count} non-subscribers restricted in {elapsed:.1f} s; {len(calls)} Bot API calls "
        f"({', '.join(f'{m} {n}' for m, n in sorted(methods.items()))})"
    )
    print(
        f"      lower bound for those calls at {OVERALL_PER_SECOND:.0f}/s: {bound:.1f} s "
        f"-> {elapsed / bound:.2f}x the bound; 429 answers: {flood}"
    )
    # Where the time beyond the limiter's pace goes: stretches with no call at all.
    times = sorted(c.at for c in calls)
    pace = 1 / (OVERALL_PER_SECOND * 0.94)
    idle = sum(b - a - pace for a, b in zip(times, times[1:], strict=False) if b - a > 2 * pace)
    print(f"      first call after {times[0] - wall_start:.2f} s; idle stretches (no call for "
          f"over two slots) add up to {idle:.1f} s")
    if os.environ.get("RAID_GAPS"):
        ordered = sorted(calls, key=lambda c: c.at)
        gaps = sorted(((b.at - a.at, i, a.method, b.method) for i, (a, b)
                       in enumerate(zip(ordered, ordered[1:], strict=False))), reverse=True)
        for gap, i, before_gap, after_gap in gaps[:8]:
            print(f"        gap {gap * 1000:.0f} ms after call {i} ({before_gap} -> {after_gap}), "
                  f"at {ordered[i].at - wall_start:.1f} s")
    if presses:
        print(
            f'      "I\'ve joined" pressed {len(presses)} times during the raid: answered in '
            f"p50 {statistics.median(presses) * 1000:.0f} ms, "
            f"p95 {percentile(presses, 0.95) * 1000:.0f} ms, max {max(presses) * 1000:.0f} ms "
            f"(press #{presses.index(max(presses)) + 1})"
        )


def _joined_button(message: dict) -> str | None:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    for row in rows:
        for button in row:
            if str(button.get("callback_data", "")).startswith("nz:j:"):
                return button["callback_data"]
    return None


async def webhook_rate(emu: TelegramEmulator, scene, count: int) -> None:
    """runbot with web in a child process; updates POSTed to its webhook route over HTTP."""
    import aiohttp
    from django.conf import settings

    from bots import webhook

    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    settings.WEBHOOK_SECRET = "benchmark-webhook-secret"
    env = {
        **os.environ,
        "TELEGRAM_API_URL": emu.api_url,
        "WEBHOOK_URL": base,
        "WEBHOOK_SECRET": settings.WEBHOOK_SECRET,
        "LOG_LEVEL": "ERROR",
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, MANAGE, "runbot",
        "--host", "127.0.0.1", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await emu.wait_for_call("setWebhook", timeout=60, since=len(emu.calls) - 1)
        url = f"{base}{webhook.webhook_path(scene.bot.id)}"
        headers = {webhook.SECRET_HEADER.decode(): webhook.webhook_secret(scene.bot.id)}
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as http:
            # Warm the child's caches: Bob's first messages take the slow path.
            for i in range(20):
                raw = group_message(70_000_000 + i, scene.group.id, scene.bob.id)
                async with http.post(url, json=raw, headers=headers) as response:
                    await response.read()
                if await _decided(http, base) > 0:
                    break
                await asyncio.sleep(0.2)
            before = await _decided(http, base)
            bodies = [
                json.dumps(group_message(80_000_000 + i, scene.group.id, scene.bob.id)).encode()
                for i in range(count)
            ]
            statuses: list[int] = []

            async def post(body: bytes) -> None:
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses.append(response.status)

            start = time.perf_counter()
            for chunk in range(0, count, 256):
                await asyncio.gather(*(post(b) for b in bodies[chunk : chunk + 256]))
            elapsed = time.perf_counter() - start
            decided = await _decided(http, base) - before
        ok = statuses.count(200)
        print(
            f"decided/s over the webhook (runbot with daphne in another process, 64 "
            f"connections): {count / elapsed:,.0f} updates/s; {ok} answered 200, "
            f"{decided:.0f} decided by the fast path"
        )
    finally:
        child.send_signal(signal.SIGTERM)
        await asyncio.wait_for(child.wait(), 60)


async def _decided(http, base: str) -> float:
    """allow_subscribed decisions so far, from the child's /metrics."""
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith('nezuko_decisions_total{outcome="allow_subscribed"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def bench(feed: int, polled: int, raid_size: int, hooked: int) -> None:
    emu = TelegramEmulator()
    await emu.start()
    scene = make_scene(emu)
    probe = emu.create_user("Probe")
    bot = await sync_to_async(register)(scene.bot.token, emu.api_url)
    await sync_to_async(protect)(bot, scene.group, scene.channel, [scene.alice, scene.bot])
    emu.join(scene.channel, scene.bob)
    options = runtime_options()
    options.api_url = emu.api_url
    options.webhook_url = ""
    options.locks = FileLocks(DB.parent / "locks")
    supervisor = Supervisor(options)
    try:
        await supervisor.reconcile()
        runner = supervisor.runners[bot.pk]
        await runner.ready.wait()
        # Warm: Bob's first message is checked once, then he is a known subscriber;
        # the start's own writes may invalidate the group's cached config once more.
        for attempt in range(5):
            emu.send_message(scene.group, scene.bob, f"warm-up {attempt}")
            await settle(emu, scene.bot, probe)
            if options.fast_path(runner.engine, group_message(1, scene.group.id, scene.bob.id)):
                break
        else:
            print("warning: the fast path never took the warm-up message")

        per_update = ceiling(scene.group.id, scene.bob.id)
        print(
            f"ceiling: json.loads + Update.de_json {per_update * 1e6:.0f} µs per update "
            f"-> {1 / per_update:,.0f} updates/s for any path that builds PTB objects"
        )
        rate = await feed_rate(runner, scene.group.id, scene.bob.id, feed)
        print(f"decided/s (warm cache, raw JSON into the runner): {rate:,.0f} updates/s")

        handled = runner.heartbeat.updates_handled
        start = time.perf_counter()
        for i in range(polled):
            emu.send_message(scene.group, scene.bob, f"message {i}")
        # Counted as each is decided (fast path) or taken up by a handler.
        while runner.heartbeat.updates_handled - handled < polled:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        print(
            f"decided/s end to end (long polling the emulator, same process): "
            f"{polled / elapsed:,.0f} updates/s "
            f"({runner.heartbeat.updates_handled - handled} updates handled)"
        )

        latencies = await paced_latency(runner, scene.group.id, scene.bob.id, 3.0)
        print(
            f"latency at 1,000 updates/s ({len(latencies)} updates): "
            f"p50 {percentile(latencies, 0.50) * 1e3:.3f} ms, "
            f"p95 {percentile(latencies, 0.95) * 1e3:.3f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1e3:.3f} ms"
        )
        if raid_size:
            await raid(emu, scene, raid_size)
        await supervisor.shutdown()
        await supervisor.locks.close()
        if hooked:
            emu.flood_limits = False
            await webhook_rate(emu, scene, hooked)
    finally:
        await supervisor.shutdown()
        await supervisor.locks.close()
        await emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed", type=int, default=50_000)
    parser.add_argument("--polled", type=int, default=20_000)
    parser.add_argument("--raid", type=int, default=1_000, help="0 skips the raid (~70 s)")
    parser.add_argument("--webhook", type=int, default=20_000, help="updates POSTed; 0 skips")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    asyncio.run(bench(args.feed, args.polled, args.raid, args.webhook))


if __name__ == "__main__":
    main()
