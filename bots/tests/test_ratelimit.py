"""The rate limiter's scheduling rules, driven through its PTB interface.

These tests call `process_request` the way ExtBot does, with a callback that
records the order calls start in; the emulator-backed tests in
test_ratelimit_emulator.py check the same limiter on the wire.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram import ChatPermissions
from telegram.error import BadRequest, RetryAfter

from bots.ratelimit import (
    Limits,
    Priority,
    RateLimitDropped,
    TelegramRateLimiter,
    person_waiting,
    priority,
)

# PTB's RetryAfter warns about its own int/timedelta switch when built; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

# A guard against a hung test, far above what any case needs; never a speed claim.
HANG_GUARD = 20


class Wire:
    """Stands in for the HTTP call: records which call started, in order."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.fail_once: dict[str, BaseException] = {}

    def call(self, label: str):
        async def send(*_args: Any, **_kwargs: Any) -> dict:
            self.started.append(label)
            if label in self.fail_once:
                raise self.fail_once.pop(label)
            return {"ok": label}

        return send


async def request(
    limiter: TelegramRateLimiter,
    wire: Wire,
    label: str,
    method: str = "restrictChatMember",
    chat_id: int | str | None = -100,
    level: Priority | None = None,
    **data: Any,
) -> Any:
    if chat_id is not None:
        data["chat_id"] = chat_id
    return await limiter.process_request(
        wire.call(label), (), {}, method, data, None if level is None else int(level)
    )


def slow_limits(**overrides: Any) -> Limits:
    """Ten calls a second: slow enough that a queue forms, fast enough for a test."""
    values: dict[str, Any] = {"overall_per_second": 10.0, "headroom": 1.0}
    values.update(overrides)
    return Limits(**values)


async def test_it_serves_a_person_before_queued_enforcement_and_bulk():
    limiter, wire = TelegramRateLimiter(slow_limits()), Wire()
    bulk = [
        asyncio.create_task(request(limiter, wire, f"p2-{i}", level=Priority.P2)) for i in range(3)
    ]
    enforce = [asyncio.create_task(request(limiter, wire, f"p1-{i}")) for i in range(3)]
    await asyncio.sleep(0)  # let them queue
    answer = asyncio.create_task(
        request(
            limiter, wire, "p0", method="answerCallbackQuery", chat_id=None, callback_query_id="1"
        )
    )
    await asyncio.wait_for(asyncio.gather(*bulk, *enforce, answer), HANG_GUARD)

    # The first call took the free slot; the answer goes next, then P1, then P2.
    assert wire.started == ["p2-0", "p0", "p1-0", "p1-1", "p1-2", "p2-1", "p2-2"]


async def test_the_priority_block_applies_to_every_call_inside_it():
    limiter, wire = TelegramRateLimiter(slow_limits()), Wire()
    first = asyncio.create_task(request(limiter, wire, "first"))
    queued = [asyncio.create_task(request(limiter, wire, f"p1-{i}")) for i in range(2)]
    await asyncio.sleep(0)
    with priority(Priority.P0):
        unmute = asyncio.create_task(request(limiter, wire, "unmute"))
    await asyncio.wait_for(asyncio.gather(first, *queued, unmute), HANG_GUARD)

    # It should start the call made under P0 before the queued P1 calls.
    assert wire.started == ["first", "unmute", "p1-0", "p1-1"]


async def test_an_unmute_is_a_p0_call_without_being_told():
    limiter, wire = TelegramRateLimiter(slow_limits()), Wire()
    first = asyncio.create_task(request(limiter, wire, "first"))
    mutes = [
        asyncio.create_task(
            request(
                limiter, wire, f"mute-{i}", permissions=ChatPermissions(can_send_messages=False)
            )
        )
        for i in range(2)
    ]
    await asyncio.sleep(0)
    unmute = asyncio.create_task(
        request(limiter, wire, "unmute", permissions=ChatPermissions(can_send_messages=True))
    )
    await asyncio.wait_for(asyncio.gather(first, *mutes, unmute), HANG_GUARD)

    assert wire.started == ["first", "unmute", "mute-0", "mute-1"]


async def test_retry_after_pauses_only_the_chat_it_was_answered_for():
    limiter, wire = TelegramRateLimiter(Limits(overall_per_second=1000)), Wire()
    wire.fail_once["group-a"] = RetryAfter(1)
    in_a = asyncio.create_task(request(limiter, wire, "group-a", chat_id=-1001))
    await asyncio.sleep(0)
    # It should keep calling about another group and answering people meanwhile.
    others = await asyncio.wait_for(
        asyncio.gather(
            request(limiter, wire, "group-b", chat_id=-1002),
            request(limiter, wire, "answer", method="answerCallbackQuery", chat_id=None),
            request(limiter, wire, "group-b-again", chat_id=-1002),
        ),
        HANG_GUARD,
    )
    assert others == [{"ok": "group-b"}, {"ok": "answer"}, {"ok": "group-b-again"}]
    assert not in_a.done()
    assert limiter.paused_until(-1001) > 0
    assert limiter.paused_until(-1002) == 0

    # It should retry the paused call once the pause is over, and return its answer.
    assert await asyncio.wait_for(in_a, HANG_GUARD) == {"ok": "group-a"}
    assert wire.started.count("group-a") == 2


async def test_retry_after_on_a_call_without_a_chat_pauses_the_whole_bot():
    limiter, wire = TelegramRateLimiter(Limits(overall_per_second=1000)), Wire()
    wire.fail_once["me"] = RetryAfter(1)
    me = asyncio.create_task(request(limiter, wire, "me", method="getMe", chat_id=None))
    await asyncio.sleep(0)
    other = asyncio.create_task(request(limiter, wire, "other", chat_id=-1002))
    await asyncio.wait_for(asyncio.gather(me, other), HANG_GUARD)

    # The other call waited for the bot-wide pause; the retried call kept its place.
    assert limiter.paused_until(None) > 0
    assert wire.started == ["me", "me", "other"]


async def test_it_gives_up_after_the_configured_retries():
    limiter = TelegramRateLimiter(Limits(overall_per_second=1000, max_retries=0))
    wire = Wire()
    wire.fail_once["x"] = RetryAfter(1)
    with pytest.raises(RetryAfter):
        await request(limiter, wire, "x")


async def test_other_errors_reach_the_caller_untouched():
    limiter, wire = TelegramRateLimiter(), Wire()
    wire.fail_once["x"] = BadRequest("Chat not found")
    with pytest.raises(BadRequest, match="Chat not found"):
        await request(limiter, wire, "x")
    assert wire.started == ["x"]


async def test_the_group_message_window_holds_only_that_group():
    limits = Limits(
        overall_per_second=1000, chat_interval=0, margin=0, group_messages=2, group_window=0.5
    )
    limiter, wire = TelegramRateLimiter(limits), Wire()
    in_a = [
        asyncio.create_task(request(limiter, wire, f"a{i}", method="sendMessage", chat_id=-1001))
        for i in range(3)
    ]
    await asyncio.sleep(0)
    in_b = asyncio.create_task(request(limiter, wire, "b0", method="sendMessage", chat_id=-1002))
    await asyncio.wait_for(asyncio.gather(*in_a, in_b), HANG_GUARD)

    # The third message to A waits for A's window; B's message does not wait for it.
    assert wire.started == ["a0", "a1", "b0", "a2"]


async def test_reads_about_a_channel_are_not_held_to_the_group_message_limit():
    limits = Limits(group_messages=1, group_window=3600, chat_interval=3600)
    limiter, wire = TelegramRateLimiter(limits), Wire()
    # With a one-hour window, any read counted as a group message would hang here.
    reads = [
        request(limiter, wire, f"read{i}", method="getChatMember", chat_id=-1009, user_id=i)
        for i in range(5)
    ]
    await asyncio.wait_for(asyncio.gather(*reads), HANG_GUARD)
    assert len(wire.started) == 5


async def test_one_message_per_second_per_chat_applies_to_private_chats_too():
    limits = Limits(overall_per_second=1000, chat_interval=0.3, margin=0)
    limiter, wire = TelegramRateLimiter(limits), Wire()
    to_alice = [
        asyncio.create_task(request(limiter, wire, f"alice{i}", method="sendMessage", chat_id=42))
        for i in range(2)
    ]
    await asyncio.sleep(0)
    to_bob = asyncio.create_task(request(limiter, wire, "bob", method="sendMessage", chat_id=43))
    await asyncio.wait_for(asyncio.gather(*to_alice, to_bob), HANG_GUARD)

    assert wire.started == ["alice0", "bob", "alice1"]


async def test_a_full_queue_refuses_and_counts_the_call():
    limiter, wire = TelegramRateLimiter(slow_limits(max_queue=(5, 2, 5))), Wire()
    waiting = [asyncio.create_task(request(limiter, wire, f"p1-{i}")) for i in range(3)]
    await asyncio.sleep(0)

    # One call runs at once, two wait: the queue is full.
    with pytest.raises(RateLimitDropped, match="queue full"):
        await request(limiter, wire, "overflow")
    assert limiter.dropped(Priority.P1) == 1
    assert limiter.dropped(Priority.P0) == 0
    await asyncio.wait_for(asyncio.gather(*waiting), HANG_GUARD)
    assert "overflow" not in wire.started


async def test_a_call_that_waits_too_long_is_dropped():
    limiter, wire = TelegramRateLimiter(Limits(max_wait=(30, 30, 0.2))), Wire()
    wire.fail_once["me"] = RetryAfter(5)
    paused = asyncio.create_task(request(limiter, wire, "me", method="getMe", chat_id=None))
    await asyncio.sleep(0)

    # The bot is paused for 5 s; a bulk call may wait 0.2 s only.
    with pytest.raises(RateLimitDropped, match="timeout"):
        await asyncio.wait_for(request(limiter, wire, "bulk", level=Priority.P2), HANG_GUARD)
    assert limiter.dropped(Priority.P2) == 1
    assert limiter.depth(Priority.P2) == 0
    paused.cancel()


async def test_a_cancelled_caller_leaves_the_queue():
    limiter, wire = TelegramRateLimiter(slow_limits()), Wire()
    first = asyncio.create_task(request(limiter, wire, "first"))
    gone = asyncio.create_task(request(limiter, wire, "gone"))
    await asyncio.sleep(0)
    assert limiter.depth(Priority.P1) == 1
    gone.cancel()
    await asyncio.gather(first, gone, return_exceptions=True)
    assert limiter.depth(Priority.P1) == 0
    assert wire.started == ["first"]


async def test_shutdown_refuses_what_is_still_waiting():
    limiter, wire = TelegramRateLimiter(slow_limits()), Wire()
    calls = [asyncio.create_task(request(limiter, wire, f"c{i}")) for i in range(3)]
    await asyncio.sleep(0)
    await limiter.shutdown()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0] == {"ok": "c0"}
    assert all(isinstance(r, RateLimitDropped) for r in results[1:])


async def test_calls_made_for_a_waiting_person_are_p0_even_when_they_ask_for_p1():
    limiter, wire = TelegramRateLimiter(slow_limits()), Wire()
    first = asyncio.create_task(request(limiter, wire, "first"))
    queued = [asyncio.create_task(request(limiter, wire, f"p1-{i}")) for i in range(2)]
    await asyncio.sleep(0)
    # The button handler's fresh membership check says P1 explicitly.
    with person_waiting():
        check = asyncio.create_task(
            request(limiter, wire, "fresh-check", method="getChatMember", level=Priority.P1)
        )
    await asyncio.wait_for(asyncio.gather(first, *queued, check), HANG_GUARD)

    assert wire.started == ["first", "fresh-check", "p1-0", "p1-1"]


async def test_boosting_a_task_serves_its_queued_and_later_calls_first():
    limiter, wire = TelegramRateLimiter(slow_limits()), Wire()
    first = asyncio.create_task(request(limiter, wire, "first"))
    queued = [asyncio.create_task(request(limiter, wire, f"p1-{i}")) for i in range(3)]
    await asyncio.sleep(0)

    # A person's button press waits for the task behind "p1-2" (their own join).
    assert limiter.boost({queued[2]}) == 1
    await asyncio.wait_for(asyncio.gather(first, *queued), HANG_GUARD)

    assert wire.started == ["first", "p1-2", "p1-0", "p1-1"]


async def test_with_a_tolerance_a_late_grant_does_not_push_every_later_call_back():
    """The loop wakes a timer late (epoll rounds up to milliseconds, a busy loop later
    still): the calls after it stay on the pace, taking back at most a quarter slot."""
    from bots.ratelimit import _Request

    limiter = TelegramRateLimiter(slow_limits(late_tolerance=0.25))  # one call per 0.1 s
    future = asyncio.get_running_loop().create_future()

    def grant(now: float) -> float:
        limiter._consume(_Request(Priority.P1, "getChatMember", -100, False, True, 1e9, future),
                         now)
        return limiter._next_call

    assert grant(0.0) == pytest.approx(0.1)
    # Granted 20 ms late: the next slot is still 0.2, not 0.22.
    assert grant(0.12) == pytest.approx(0.2)
    # Late by more than a quarter slot: only a quarter is taken back.
    assert grant(0.26) == pytest.approx(0.335)
    # After an idle stretch the first call books one slot, less the quarter.
    assert grant(5.0) == pytest.approx(5.075)
    # Never a burst: back-to-back grants stay a full interval apart.
    assert grant(5.075) == pytest.approx(5.175)


async def test_without_a_tolerance_the_next_call_waits_a_full_interval_after_a_late_one():
    from bots.ratelimit import _Request

    limiter = TelegramRateLimiter(slow_limits())
    future = asyncio.get_running_loop().create_future()
    request = _Request(Priority.P1, "getChatMember", -100, False, True, 1e9, future)
    limiter._consume(request, 0.0)
    limiter._consume(request, 0.12)
    assert limiter._next_call == pytest.approx(0.22)
