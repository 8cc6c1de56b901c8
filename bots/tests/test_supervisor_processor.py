"""The per-person update processor the supervisor gives each bot."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Bot, Update

from bots.application import PerUserUpdateProcessor

BOT = Bot("1:" + "x" * 35)
HANG_GUARD = 20


def message_from(user_id: int, update_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": -100, "type": "supergroup"},
                "from": {"id": user_id, "is_bot": False, "first_name": f"U{user_id}"},
                "text": "hi",
            },
        },
        BOT,
    )


def press_by(user_id: int, update_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "callback_query": {
                "id": str(update_id),
                "chat_instance": "1",
                "data": "nz:j:0",
                "from": {"id": user_id, "is_bot": False, "first_name": f"U{user_id}"},
            },
        },
        BOT,
    )


class Work:
    """Handler stand-ins: each records its start and waits until released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def handle(self, label: str) -> None:
        self.started.append(label)
        await self.release.setdefault(label, asyncio.Event()).wait()

    def let_go(self, label: str) -> None:
        self.release.setdefault(label, asyncio.Event()).set()


async def run(processor: PerUserUpdateProcessor, update: Update, work: Work, label: str) -> Any:
    return asyncio.create_task(processor.process_update(update, work.handle(label)))


async def test_one_persons_updates_run_in_order_and_others_run_meanwhile():
    processor, work = PerUserUpdateProcessor(), Work()
    alice_join = await run(processor, message_from(1, 1), work, "alice-1")
    alice_next = await run(processor, message_from(1, 2), work, "alice-2")
    bob = await run(processor, message_from(2, 3), work, "bob-1")
    await asyncio.sleep(0)

    # Alice's second update waits for her first; Bob does not wait for her.
    assert work.started == ["alice-1", "bob-1"]
    assert processor.pending == 3
    work.let_go("alice-1")
    work.let_go("bob-1")
    await asyncio.wait_for(asyncio.gather(alice_join, bob), HANG_GUARD)
    await asyncio.sleep(0)
    assert work.started == ["alice-1", "bob-1", "alice-2"]
    work.let_go("alice-2")
    await asyncio.wait_for(alice_next, HANG_GUARD)
    assert processor.pending == 0


async def test_a_press_behind_the_persons_own_update_asks_to_boost_it():
    processor, work = PerUserUpdateProcessor(), Work()
    boosted: list[set] = []
    processor.on_blocked = boosted.append
    join = await run(processor, message_from(1, 1), work, "join")
    await asyncio.sleep(0)
    press = await run(processor, press_by(1, 2), work, "press")
    await asyncio.sleep(0)

    # The press names the task it waits for, so its Telegram calls can jump the queue.
    assert boosted == [{join}]
    work.let_go("join")
    work.let_go("press")
    await asyncio.wait_for(asyncio.gather(join, press), HANG_GUARD)


async def test_cancel_all_stops_waiting_and_running_updates():
    done: list[tuple[int, bool]] = []
    processor = PerUserUpdateProcessor(
        on_done=lambda u, finished: done.append((u.update_id, finished))
    )
    work = Work()
    tasks = [await run(processor, message_from(1, i), work, f"u{i}") for i in (1, 2)]
    await asyncio.sleep(0)

    assert processor.cancel_all() == 2
    await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(done) == [(1, False), (2, False)]
    assert processor.pending == 0
