"""How fast the enforcement engine decides, in process and end to end.

    .venv/bin/python benchmarks/engine.py [--messages 5000] [--raid 100]
    .venv/bin/python benchmarks/engine.py --policy all,any,2   # decided/s per policy

Three figures, each a few seconds at most, on a throw-away SQLite database:

1. decision: the message handler for a known subscriber in a protected group,
   fed prebuilt PTB Updates (no HTTP): microseconds per message; and the
   raw-JSON fast path the runtime calls before building any PTB object.
2. end to end: the bot run as runbot runs it (the supervisor with runbot's
   composition: fast path, per-person processor, limiter, long polling)
   against the Bot API emulator; N messages from a subscriber, timed until
   the last is handled: messages/second and Telegram calls made.
3. raid: R non-subscribers join at once under the emulator's flood limits
   and the production limiter: seconds until all are restricted, warnings
   posted, and 429s seen.

With `--policy`, instead: decisions per second for a known subscriber under
each channel policy (all, any, at least N) of a group that links three
channels, the subscriber being in exactly as many as the policy needs (for
`any`, the last one: the rule reads every answer), beside today's rule (one
channel, `all`), through the handler and through the raw-JSON fast path.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asgiref.sync import sync_to_async  # noqa: E402
from django.core.management import call_command  # noqa: E402
from telegram import Update  # noqa: E402

from benchmarks.scratch import DB, protect, register  # noqa: E402  (sets Django up)
from bots.botrunner import BotRunner  # noqa: E402
from bots.emulator import TelegramEmulator  # noqa: E402
from bots.emulator.scene import make_scene  # noqa: E402
from bots.locks import FileLocks  # noqa: E402
from bots.testing import supervised  # noqa: E402
from groups.config import configs  # noqa: E402
from groups.models import EnforcedChannel, GroupChannel, ProtectedGroup  # noqa: E402
from nezuko.runtime import runtime_options  # noqa: E402
from verification.fastpath import fast_path  # noqa: E402
from verification.flows.messages import on_message  # noqa: E402


async def until_handled(emu: TelegramEmulator, scene, probe, runner: BotRunner) -> None:
    """Polling takes updates in order, so the probe's answer means all before it were
    taken; different people's run concurrently, so then wait for the queue too."""
    since = len(emu.calls)
    emu.send_message(scene.bot, probe, "/help")
    await emu.wait_for_call("sendMessage", timeout=120, since=since, chat_id=probe.id)
    await runner.application.update_queue.join()


async def bench(messages: int, raid: int) -> None:
    emu = TelegramEmulator()
    await emu.start()
    scene = make_scene(emu)
    probe = emu.create_user("Probe")
    bot = await sync_to_async(register)(scene.bot.token, emu.api_url)
    await sync_to_async(protect)(bot, scene.group, scene.channel, [scene.alice, scene.bot])
    emu.join(scene.channel, scene.bob)
    try:
        options = runtime_options()
        options.api_url, options.webhook_url = emu.api_url, ""
        options.locks = FileLocks(DB.parent / "locks")
        async with supervised(options, bot.pk) as runner:
            engine = runner.engine
            await until_handled(emu, scene, probe, runner)
            # 1. decision only: the handler on prebuilt updates, no HTTP.
            updates = [
                Update.de_json(
                    {"update_id": 10_000_000 + i,
                     "message": {"message_id": 10_000 + i, "date": 0, "text": "hi",
                                 "chat": {"id": scene.group.id, "type": "supergroup"},
                                 "from": {"id": scene.bob.id, "is_bot": False,
                                          "first_name": "Bob"}}},
                    engine.bot)
                for i in range(20_000)
            ]
            handler = functools.partial(on_message, engine)
            await handler(updates[0])
            samples = []
            for chunk in range(0, len(updates), 1000):
                start = time.perf_counter()
                for update in updates[chunk:chunk + 1000]:
                    await handler(update)
                samples.append((time.perf_counter() - start) / 1000 * 1e6)
            median = statistics.median(samples)
            print(f"decision (known subscriber, in process): median {median:.1f} µs"
                  f" per message over {len(updates)} messages")

            # 1b. the raw-JSON fast path the runtime supervisor calls first.
            raws = [
                {"update_id": 20_000_000 + i,
                 "message": {"message_id": 30_000 + i, "date": 0, "text": "hi",
                             "chat": {"id": scene.group.id, "type": "supergroup"},
                             "from": {"id": scene.bob.id, "is_bot": False,
                                      "first_name": "Bob"}}}
                for i in range(100_000)
            ]
            if not fast_path(engine, raws[0]):
                # A configuration change (my_chat_member at start) dropped the cache.
                await handler(updates[0], None)
            start = time.perf_counter()
            taken = sum(fast_path(engine, r) for r in raws)
            per = (time.perf_counter() - start) / len(raws) * 1e6
            print(f"fast path (raw JSON, known subscriber): {per:.2f} µs per update, "
                  f"{taken} of {len(raws)} decided without PTB objects")

            # 2. end to end over HTTP.
            before = len(emu.calls)
            start = time.perf_counter()
            for i in range(messages):
                emu.send_message(scene.group, scene.bob, f"message {i}")
            await until_handled(emu, scene, probe, runner)
            elapsed = time.perf_counter() - start
            made = [c.method for c in emu.calls[before:] if c.method != "getUpdates"]
            print(f"end to end: {messages} messages in {elapsed:.2f} s = "
                  f"{messages / elapsed:,.0f} messages/s; Telegram calls besides polling: "
                  f"{len(made) - 1} (plus the probe's reply)")

            # 3. a join raid under flood limits.
            emu.flood_limits = True
            raiders = [emu.create_user(f"Raider {i}") for i in range(raid)]
            start = time.perf_counter()
            for raider in raiders:
                emu.join(scene.group, raider)
            for raider in raiders:
                await emu.wait_for_call("restrictChatMember", timeout=300, user_id=raider.id)
            elapsed = time.perf_counter() - start
            warnings = len(emu.calls_named("sendMessage", chat_id=scene.group.id))
            edits = len(emu.calls_named("editMessageText", chat_id=scene.group.id))
            flood = sum(1 for c in emu.calls if c.error_code == 429)
            # Warnings wait behind restrictions (lower priority): count them once settled too.
            await until_handled(emu, scene, probe, runner)
            await engine.idle()
            settled = len(emu.calls_named("sendMessage", chat_id=scene.group.id))
            print(f"raid: {raid} joiners restricted in {elapsed:.1f} s "
                  f"({raid / elapsed:.1f}/s); warning messages {warnings} by then "
                  f"({settled} once settled), edits {edits}, 429 answers {flood}")
    finally:
        await emu.stop()


POLICY_DECISIONS = 20_000  # per policy and path: bounded, a second or two each


def raw_message(chat_id: int, user, n: int) -> dict:
    return {"update_id": 40_000_000 + n,
            "message": {"message_id": 50_000 + n, "date": 0, "text": "hi",
                        "chat": {"id": chat_id, "type": "supergroup"},
                        "from": {"id": user.id, "is_bot": False, "first_name": "Bob"}}}


async def decided_per_second(engine, chat_id: int, user) -> tuple[float, float]:
    """(handler, fast path) decisions per second for `user` speaking in `chat_id`."""
    raws = [raw_message(chat_id, user, n) for n in range(POLICY_DECISIONS)]
    updates = [Update.de_json(r, engine.bot) for r in raws[:POLICY_DECISIONS // 4]]
    handler = functools.partial(on_message, engine)
    await handler(updates[0])  # loads the configuration, as the first message would
    start = time.perf_counter()
    for update in updates:
        await handler(update)
    through_handler = len(updates) / (time.perf_counter() - start)
    start = time.perf_counter()
    taken = sum(fast_path(engine, r) for r in raws)
    if taken != len(raws):
        raise SystemExit(f"fast path decided {taken} of {len(raws)}: not a known subscriber")
    return through_handler, len(raws) / (time.perf_counter() - start)


def link_channels(bot, group, channels, policy: str) -> None:
    row = ProtectedGroup.objects.get(bot=bot, chat_id=group.id)
    for channel in channels:
        chan, _ = EnforcedChannel.objects.get_or_create(
            bot=bot, chat_id=channel.id,
            defaults={"title": channel.title, "username": channel.username or ""})
        GroupChannel.objects.get_or_create(group=row, channel=chan)
    ProtectedGroup.objects.filter(pk=row.pk).update(policy=policy)
    configs.clear()


async def bench_policies(policies: list[str]) -> None:
    emu = TelegramEmulator()
    await emu.start()
    scene = make_scene(emu)
    probe = emu.create_user("Probe")
    bot = await sync_to_async(register)(scene.bot.token, emu.api_url)
    await sync_to_async(protect)(bot, scene.group, scene.channel, [scene.alice, scene.bot])
    extra = [emu.create_channel(f"Cat {name}", creator=scene.alice, username=f"cat{name}")
             for name in ("pics", "art")]
    for channel in extra:
        emu.promote(channel, scene.bot, by=scene.alice)
    try:
        options = runtime_options()
        options.api_url, options.webhook_url = emu.api_url, ""
        options.locks = FileLocks(DB.parent / "locks")
        async with supervised(options, bot.pk) as runner:
            engine = runner.engine
            await until_handled(emu, scene, probe, runner)
            channels = [scene.channel, *extra]
            # Today's figure: one channel, `all`.
            engine.memberships.remember((scene.bot.id, scene.channel.id, scene.bob.id), True)
            handler, fast = await decided_per_second(engine, scene.group.id, scene.bob)
            print(f"today (1 channel, all): {handler:,.0f}/s through the handler, "
                  f"{fast:,.0f}/s through the fast path")
            for policy in policies:
                await sync_to_async(link_channels)(bot, scene.group, channels[1:], policy)
                needed = {"all": 3, "any": 1}.get(policy) or int(policy)
                # Subscribed to exactly `needed` of the three, counting from the last.
                for n, channel in enumerate(reversed(channels)):
                    engine.memberships.remember((scene.bot.id, channel.id, scene.bob.id),
                                                n < needed)
                handler, fast = await decided_per_second(engine, scene.group.id, scene.bob)
                print(f"policy {policy} (3 channels, in {needed}): {handler:,.0f}/s through "
                      f"the handler, {fast:,.0f}/s through the fast path")
    finally:
        await emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--raid", type=int, default=100)
    parser.add_argument("--policy", default="",
                        help="comma-separated policies (all, any, 2, 3): decided/s for each")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    if args.policy:
        asyncio.run(bench_policies([p.strip() for p in args.policy.split(",") if p.strip()]))
        return
    asyncio.run(bench(args.messages, args.raid))


if __name__ == "__main__":
    main()
