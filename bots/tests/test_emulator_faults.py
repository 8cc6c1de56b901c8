"""Injected faults and flood limits surface as python-telegram-bot's exceptions."""

from __future__ import annotations

import asyncio

import pytest
from telegram import ChatPermissions
from telegram.error import NetworkError, RetryAfter

from bots.emulator import FloodLimiter
from bots.testing import Scene


def seconds(error: RetryAfter) -> float:
    """PTB 22 gives an int, later versions a timedelta."""
    value = error.retry_after
    return value if isinstance(value, int | float) else value.total_seconds()


async def test_an_injected_429_carries_retry_after(scene: Scene) -> None:
    emu = scene.emulator
    emu.fail("getChatMember", chat_id=scene.channel, error_code=429, retry_after=7, times=2)
    async with scene.ptb_bot() as bot:
        for _ in range(2):
            with pytest.raises(RetryAfter) as caught:
                await bot.get_chat_member(scene.channel.id, scene.bob.id)
            assert seconds(caught.value) == 7
        # Other chats were never affected, and the fault is used up.
        await bot.get_chat_member(scene.group.id, scene.bob.id)
        await bot.get_chat_member(scene.channel.id, scene.bob.id)
    outcomes = [c.error_code for c in emu.calls_named("getChatMember")]
    assert outcomes == [429, 429, None, None]


async def test_server_errors_and_custom_descriptions(scene: Scene) -> None:
    emu = scene.emulator
    emu.fail("sendMessage", error_code=502)
    emu.fail("sendMessage", error_code=500, description="Internal Server Error: restart")
    async with scene.ptb_bot() as bot:
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(scene.group.id, "one")
        with pytest.raises(NetworkError, match="restart"):
            await bot.send_message(scene.group.id, "two")
        await bot.send_message(scene.group.id, "three")


async def test_added_latency_delays_only_that_method(scene: Scene) -> None:
    emu = scene.emulator
    emu.delay("restrictChatMember", 30)
    async with scene.ptb_bot() as bot:
        slow = asyncio.create_task(
            bot.restrict_chat_member(scene.group.id, scene.bob.id, ChatPermissions.no_permissions())
        )
        # Other methods answer while the restriction is held back.
        await bot.get_chat(scene.group.id)
        # Long enough for an undelayed restriction to have finished.
        done, _pending = await asyncio.wait({slow}, timeout=0.5)
        assert not done
        assert emu.member(scene.group, scene.bob)["status"] == "member"
        slow.cancel()


async def test_added_latency_is_a_round_trip_the_call_takes_effect_within(scene: Scene) -> None:
    """Half of it before the call takes effect, the rest before the answer arrives: the
    answer never comes sooner than the latency, and the change is made by then."""
    emu = scene.emulator
    emu.delay("restrictChatMember", 0.6)
    async with scene.ptb_bot() as bot:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        slow = asyncio.create_task(
            bot.restrict_chat_member(scene.group.id, scene.bob.id, ChatPermissions.no_permissions())
        )
        await asyncio.sleep(0.1)
        assert emu.member(scene.group, scene.bob)["status"] == "member"  # still on its way
        assert await slow
        assert loop.time() - sent >= 0.6
        assert emu.member(scene.group, scene.bob)["status"] == "restricted"
        emu.clear_faults()
        sent = loop.time()
        await bot.get_chat(scene.group.id)
        assert loop.time() - sent < 0.6


async def test_a_burst_over_the_group_limit_gets_429(scene: Scene) -> None:
    emu = scene.emulator
    emu.flood_limits = FloodLimiter(per_bot_per_second=1000, group_per_minute=20)
    async with scene.ptb_bot() as bot:
        for n in range(20):
            await bot.send_message(scene.group.id, f"message {n}")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(scene.group.id, "one too many")
    # The wait is what is left of the minute, a positive number of seconds.
    assert 1 <= seconds(caught.value) <= 60


async def test_a_burst_over_the_per_bot_limit_gets_429(scene: Scene) -> None:
    emu = scene.emulator
    emu.flood_limits = True
    async with scene.ptb_bot() as bot:
        results = await asyncio.gather(
            *(bot.get_chat_member(scene.channel.id, scene.bob.id) for _ in range(45)),
            return_exceptions=True,
        )
    limited = [r for r in results if isinstance(r, RetryAfter)]
    # At most 30 requests in a second pass (getMe from initialize() among them); the
    # rest are told to retry after a second.
    assert 1 <= len(limited) <= 16
    assert {seconds(r) for r in limited} == {1}


async def test_private_chats_allow_one_message_per_second(scene: Scene) -> None:
    emu = scene.emulator
    emu.flood_limits = True
    emu.send_message(scene.bot, scene.carol, "/start")
    async with scene.ptb_bot() as bot:
        await bot.send_message(scene.carol.id, "first")
        with pytest.raises(RetryAfter):
            await bot.send_message(scene.carol.id, "second")
