"""How many getChatMember calls per second the Bot API emulator serves.

    .venv/bin/python benchmarks/emulator_getchatmember.py [--seconds 3] [--concurrency 64]

The emulator runs in a child process (as the standalone command would) with
one channel of 10,000 members; this process fires getChatMember over
keep-alive HTTP connections for a few seconds and prints calls/second. A
second figure drives the emulator in process: people's messages queued and
drained through getUpdates, in updates/second. Target: >= 2,000 calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bots.emulator import TelegramEmulator  # noqa: E402
from bots.emulator.scene import make_scene  # noqa: E402

MEMBERS = 10_000


def serve(port_out: multiprocessing.connection.Connection, members: int) -> None:
    """Child process: an emulator with one big channel; sends back url, token, ids."""

    async def main() -> None:
        emu = TelegramEmulator()
        scene = make_scene(emu)
        users = [emu.create_user(f"User {n}") for n in range(members)]
        for user in users:
            emu.join(scene.channel, user)
        # Nobody polls in this run: drop the queued chat_member updates.
        emu.inboxes[scene.bot.id].drop_pending()
        await emu.start()
        port_out.send((emu.api_url, scene.bot.token, scene.channel.id, [u.id for u in users]))
        await asyncio.Event().wait()

    asyncio.run(main())


async def hammer(
    api_url: str, token: str, chat_id: int, user_ids: list[int], seconds: float, concurrency: int
) -> tuple[int, int]:
    url = f"{api_url}/bot{token}/getChatMember"
    connector = aiohttp.TCPConnector(limit=concurrency)
    done = failed = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done, failed
        n = offset
        while time.perf_counter() < deadline:
            n = (n + concurrency) % len(user_ids)
            data = {"chat_id": str(chat_id), "user_id": str(user_ids[n])}
            async with session.post(url, data=data) as response:
                await response.read()
                if response.status == 200:
                    done += 1
                else:
                    failed += 1

    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done, failed


async def in_process_updates(count: int) -> float:
    """People's messages in, getUpdates out, all in this process: updates/second."""
    emu = TelegramEmulator()
    scene = make_scene(emu)
    await emu.start()
    inbox = emu.inboxes[scene.bot.id]
    inbox.drop_pending()
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        url = f"{emu.api_url}/bot{scene.bot.token}/getUpdates"
        offset, received = 0, 0
        for n in range(count):
            emu.send_message(scene.group, scene.bob, f"message {n}")
        while received < count:
            async with session.post(url, data={"offset": str(offset), "limit": "100"}) as r:
                updates = (await r.json())["result"]
            received += len(updates)
            offset = updates[-1]["update_id"] + 1
    elapsed = time.perf_counter() - started
    await emu.stop()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--updates", type=int, default=20_000)
    args = parser.parse_args()

    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(send, MEMBERS), daemon=True)
    server.start()
    try:
        api_url, token, chat_id, user_ids = receive.recv()
        done, failed = asyncio.run(
            hammer(api_url, token, chat_id, user_ids, args.seconds, args.concurrency)
        )
    finally:
        server.terminate()
        server.join()
    rate = done / args.seconds
    print(f"getChatMember: {done} calls in {args.seconds:.1f}s over {args.concurrency} connections")
    print(f"getChatMember: {rate:,.0f} calls/s (target >= 2,000), {failed} failed")
    updates_rate = asyncio.run(in_process_updates(args.updates))
    print(f"in-process: {updates_rate:,.0f} updates/s (send_message -> getUpdates, limit 100)")


if __name__ == "__main__":
    main()
