"""The per-person update processor the supervisor gives each bot."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Bot, Update

from bots.scheduler import PerUserUpdateProcessor, _Slots

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


async def test_a_persons_later_update_keeps_its_arrival_order_for_a_slot():
    # One slot. Alice's second update arrives before Carol's but can ask for a
    # slot only once her first is done; it must not queue behind Carol.
    processor, work = PerUserUpdateProcessor(max_concurrent_updates=1), Work()
    tasks = [
        await run(processor, message_from(1, 1), work, "alice-1"),
        await run(processor, message_from(1, 2), work, "alice-2"),
        await run(processor, message_from(2, 3), work, "bob"),
        await run(processor, message_from(3, 4), work, "carol"),
    ]
    await asyncio.sleep(0)
    assert work.started == ["alice-1"]
    for label in ("alice-1", "bob", "alice-2", "carol"):
        work.let_go(label)
        for _ in range(5):
            await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), HANG_GUARD)
    # A FIFO semaphore gave the order alice-1, bob, carol, alice-2.
    assert work.started == ["alice-1", "bob", "alice-2", "carol"]


async def test_a_press_and_the_updates_it_waits_for_get_slots_before_a_raid():
    # One slot, a raid queued for it. Alice's press waits for her second join
    # update, which waits for a slot: both go ahead of raiders who arrived earlier.
    processor, work = PerUserUpdateProcessor(max_concurrent_updates=1), Work()
    tasks = [await run(processor, message_from(1, 1), work, "alice-join")]
    tasks += [
        await run(processor, message_from(100 + i, 10 + i), work, f"raider-{i}") for i in range(3)
    ]
    tasks.append(await run(processor, message_from(1, 2), work, "alice-join-again"))
    tasks.append(await run(processor, message_from(200, 20), work, "late-raider"))
    tasks.append(await run(processor, press_by(1, 3), work, "press"))
    await asyncio.sleep(0)
    assert work.started == ["alice-join"]

    order = [
        "alice-join",
        "raider-0",
        "alice-join-again",
        "raider-1",
        "press",
        "raider-2",
        "late-raider",
    ]
    for label in order:
        work.let_go(label)
        for _ in range(5):
            await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), HANG_GUARD)
    # Arrival order alone would run raider-1 and raider-2 before alice-join-again,
    # and the press last of all.
    assert work.started == order
    assert processor.pending == 0
    assert processor.current_concurrent_updates == 0


async def test_an_update_cancelled_while_waiting_for_a_slot_does_not_keep_it():
    processor, work = PerUserUpdateProcessor(max_concurrent_updates=1), Work()
    first = await run(processor, message_from(1, 1), work, "first")
    waiting = await run(processor, message_from(2, 2), work, "cancelled")
    last = await run(processor, message_from(3, 3), work, "last")
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    work.let_go("first")
    work.let_go("last")
    await asyncio.wait_for(asyncio.gather(first, last), HANG_GUARD)
    assert work.started == ["first", "last"]
    assert processor.pending == 0
    assert processor.current_concurrent_updates == 0


async def test_a_slot_handed_to_a_waiter_cancelled_before_it_runs_is_passed_on():
    slots = _Slots(1)
    await slots.acquire(0, urgent=False)
    served = asyncio.create_task(slots.acquire(1, urgent=False))
    await asyncio.sleep(0)
    slots.release()  # hands the slot to `served`...
    served.cancel()  # ...which is cancelled before it resumes
    await asyncio.gather(served, return_exceptions=True)
    assert (slots.free, slots.waiting) == (1, 0)
