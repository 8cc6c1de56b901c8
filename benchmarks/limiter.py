"""Three processes on one bot token: the shared (Redis) limiter against the in-process one.

    .venv/bin/python benchmarks/limiter.py [--bulk 50 --enforce 20 --answers 10]

The Bot API emulator runs in a child process with Telegram's flood limits on
(30 calls/s per bot, 20 messages/min per group, 1/s per private chat); a
throw-away redis-server runs on its own port (started and ended by pid). Each
of 3 worker processes makes, through python-telegram-bot's ExtBot and its
limiter: `--bulk` P2 calls and `--enforce` P1 calls queued at once, one
message into each of 3 groups shared by all workers, and `--answers` P0 calls
arriving one every 0.3 s while the queues are full. Printed for each limiter:
calls/s total, 429s the emulator answered, calls that failed, per-priority
wait (issued -> started) p50/p95, and the ratio of calls/s to the 30/s bound.
Bounded: (bulk + enforce + answers + 3) x 3 calls per run, 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import itertools
import multiprocessing
import sys
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram.error import TelegramError  # noqa: E402
from telegram.ext import ExtBot  # noqa: E402

from bots.emulator import TelegramEmulator  # noqa: E402
from bots.emulator.scene import make_scene  # noqa: E402
from bots.ratelimit import Priority, TelegramRateLimiter, priority  # noqa: E402
from bots.ratelimit_redis import SharedRateLimiter  # noqa: E402
from tests.faults.servers import redis_server  # noqa: E402

WORKERS = 3
TELEGRAM_PER_SECOND = 30.0  # the bound: Telegram's overall limit per bot
GROUPS = 3
_call_id: contextvars.ContextVar[int] = contextvars.ContextVar("bench_call_id", default=0)


def serve(conn: Connection) -> None:
    """Child: the emulator with flood limits; answers "count" with (calls, 429s)."""

    async def main() -> None:
        emu = TelegramEmulator()
        scene = make_scene(emu)
        groups = [emu.create_supergroup(f"Group {n}", creator=scene.alice) for n in range(GROUPS)]
        for group in groups:
            emu.promote(group, scene.bot, by=scene.alice)
        users = [emu.create_user(f"User {n}") for n in range(50)]
        for user in users:
            emu.join(scene.group, user)
        emu.inboxes[scene.bot.id].drop_pending()
        emu.flood_limits = True
        await emu.start()
        conn.send(
            (emu.api_url, scene.bot.token, scene.group.id, [g.id for g in groups],
             [u.id for u in users])
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        mark = 0
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "mark":
                mark = len(emu.calls)
                conn.send(True)
            elif command == "count":
                made = emu.calls[mark:]
                conn.send((len(made), sum(c.error_code == 429 for c in made)))
            else:
                await emu.stop()
                return

    asyncio.run(main())


def timed(limiter: TelegramRateLimiter, starts: dict[int, float]) -> TelegramRateLimiter:
    """Record when each call (its task's `_call_id`) first leaves the limiter."""
    inner = limiter.process_request

    async def process_request(callback, args, kwargs, endpoint, data, rate_limit_args):
        call_id = _call_id.get()

        async def send(*a: Any, **k: Any) -> Any:
            starts.setdefault(call_id, time.monotonic())
            return await callback(*a, **k)

        return await inner(send, args, kwargs, endpoint, data, rate_limit_args)

    limiter.process_request = process_request  # type: ignore[method-assign]
    return limiter


def work(
    index: int, kind: str, redis_url: str, key: str, setup: tuple, counts: dict[str, int],
    barrier: Any, out: Connection,
) -> None:  # fmt: skip
    """One worker process: its own limiter and bot; sends back per-call records."""
    api_url, token, group_id, groups, users = setup

    async def main() -> list[tuple[str, float, float | None, str]]:
        if kind == "redis":
            limiter: TelegramRateLimiter = SharedRateLimiter(redis_url, key, name=f"w{index}")
        else:
            limiter = TelegramRateLimiter(name=f"w{index}")
        starts: dict[int, float] = {}
        bot = ExtBot(token, base_url=f"{api_url}/bot", rate_limiter=timed(limiter, starts))
        await bot.initialize()
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        records: list[tuple[str, float, float | None, str]] = []
        ids = itertools.count(1)

        async def call(level: Priority, make: Any) -> None:
            # Each call runs in its own task, so the id reaches the limiter with it.
            call_id = next(ids)
            _call_id.set(call_id)
            issued = time.monotonic()
            outcome = "ok"
            try:
                await make()
            except TelegramError as exc:
                outcome = type(exc).__name__
            records.append((level.name, issued, starts.get(call_id), outcome))

        def member(n: int, level: Priority):
            user = users[(index * 97 + n) % len(users)]

            async def ask() -> Any:
                # The engine's way; PTB drops a falsy rate_limit_args, so P0 (0) can't go there.
                with priority(level):
                    return await bot.get_chat_member(group_id, user)

            return ask

        tasks = [call(Priority.P2, member(n, Priority.P2)) for n in range(counts["bulk"])]
        tasks += [call(Priority.P1, member(n, Priority.P1)) for n in range(counts["enforce"])]
        tasks += [
            call(Priority.P1, lambda g=g: bot.send_message(g, f"from worker {index}"))
            for g in groups
        ]

        running = [asyncio.ensure_future(t) for t in tasks]
        for n in range(counts["answers"]):
            await asyncio.sleep(0.3)
            running.append(asyncio.ensure_future(call(Priority.P0, member(n, Priority.P0))))
        await asyncio.gather(*running)
        await bot.shutdown()
        return records

    out.send(asyncio.run(main()))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(kind: str, redis_url: str, setup: tuple, control: Connection, counts: dict) -> dict:
    control.send("mark")
    control.recv()
    barrier = multiprocessing.Barrier(WORKERS)
    key = uuid.uuid4().hex
    pipes, workers = [], []
    for index in range(WORKERS):
        receive, send = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.Process(
            target=work, args=(index, kind, redis_url, key, setup, counts, barrier, send)
        )
        process.start()
        pipes.append(receive)
        workers.append(process)
    records = [record for pipe in pipes for record in pipe.recv()]
    for process in workers:
        process.join(60)
    control.send("count")
    emulator_calls, answered_429 = control.recv()
    ok = [r for r in records if r[3] == "ok"]
    started = [r[2] for r in records if r[2] is not None]
    # Calls/s over the span in which calls started; the last start closes the span.
    span = max(started) - min(started)
    rate = (len(started) - 1) / span if span > 0 else float("nan")
    waits = {
        level: [r[2] - r[1] for r in records if r[0] == level and r[2] is not None]
        for level in ("P0", "P1", "P2")
    }
    return {
        "kind": kind, "calls": len(records), "ok": len(ok), "failed": len(records) - len(ok),
        "emulator_calls": emulator_calls, "429": answered_429, "rate": rate, "span": span,
        "waits": waits,
    }  # fmt: skip


def report(result: dict) -> None:
    name = "redis (shared)" if result["kind"] == "redis" else "in-memory (today)"
    print(f"--- {WORKERS} processes, one token, {name} limiter")
    print(
        f"calls: {result['calls']} issued, {result['ok']} ok, {result['failed']} failed; "
        f"{result['emulator_calls']} reached the emulator, 429 answered: {result['429']}"
    )
    print(
        f"calls/s total: {result['rate']:.1f} over {result['span']:.2f} s; "
        f"ratio to Telegram's bound ({TELEGRAM_PER_SECOND:.0f}/s): "
        f"{result['rate'] / TELEGRAM_PER_SECOND:.2f}"
    )
    for level, waits in result["waits"].items():
        print(
            f"  {level} wait p50 {percentile(waits, 0.5) * 1000:7.0f} ms  "
            f"p95 {percentile(waits, 0.95) * 1000:7.0f} ms  (n={len(waits)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulk", type=int, default=50)
    parser.add_argument("--enforce", type=int, default=20)
    parser.add_argument("--answers", type=int, default=10)
    args = parser.parse_args()
    counts = {"bulk": args.bulk, "enforce": args.enforce, "answers": args.answers}

    control, child_end = multiprocessing.Pipe()
    emulator = multiprocessing.Process(target=serve, args=(child_end,), daemon=True)
    emulator.start()
    try:
        setup = control.recv()
        with redis_server() as server:
            shared = run("redis", server.url(), setup, control, counts)
            time.sleep(1.1)  # let the emulator's one-second window empty
            memory = run("memory", "", setup, control, counts)
        control.send("stop")
    finally:
        emulator.join(10)
        if emulator.is_alive():
            emulator.terminate()
            emulator.join()
    report(shared)
    report(memory)
    print(f"429s: shared {shared['429']} vs in-memory {memory['429']}")


if __name__ == "__main__":
    main()
