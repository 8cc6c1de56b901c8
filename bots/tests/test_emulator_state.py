"""State a test reads directly: members, messages, timed restrictions, the call log."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import time_machine
from telegram import ChatPermissions
from telegram.error import BadRequest, ChatMigrated

from bots.emulator import EmulatorError
from bots.testing import Scene


async def test_a_timed_restriction_ends_by_itself(scene: Scene) -> None:
    emu = scene.emulator
    async with scene.ptb_bot() as bot:
        until = dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=5)
        await bot.restrict_chat_member(
            scene.group.id, scene.bob.id, ChatPermissions.no_permissions(), until_date=until
        )
    assert emu.member(scene.group, scene.bob)["status"] == "restricted"
    with time_machine.travel(until + dt.timedelta(seconds=1), tick=False):
        # Past until_date bob is a plain member again.
        assert emu.member(scene.group, scene.bob)["status"] == "member"


async def test_a_restricted_user_who_leaves_stays_restricted_but_not_a_member(
    scene: Scene,
) -> None:
    emu = scene.emulator
    async with scene.ptb_bot() as bot:
        await bot.restrict_chat_member(
            scene.group.id, scene.bob.id, ChatPermissions.no_permissions()
        )
    emu.leave(scene.group, scene.bob)
    left = emu.member(scene.group, scene.bob)
    emu.join(scene.group, scene.bob)
    back = emu.member(scene.group, scene.bob)
    assert (left["status"], left["is_member"]) == ("restricted", False)
    assert (back["status"], back["is_member"]) == ("restricted", True)
    # A muted person cannot talk, as in the Telegram app.
    with pytest.raises(EmulatorError, match="may not send messages"):
        emu.send_message(scene.group, scene.bob, "let me speak")


async def test_people_cannot_do_what_telegram_forbids(scene: Scene) -> None:
    emu = scene.emulator
    with pytest.raises(EmulatorError, match="not in"):
        emu.send_message(scene.group, scene.carol, "hi")
    with pytest.raises(EmulatorError, match="already in"):
        emu.join(scene.group, scene.bob)
    with pytest.raises(EmulatorError, match="lacks can_promote_members"):
        emu.promote(scene.group, scene.carol, by=scene.bob)
    with pytest.raises(EmulatorError, match="no button"):
        emu.press_button(scene.group, 1, scene.bob, "nope")


async def test_wait_for_call_matches_parameters_and_can_skip_the_past(scene: Scene) -> None:
    emu = scene.emulator
    async with scene.ptb_bot() as bot:
        await bot.send_message(scene.group.id, "first")
        mark = len(emu.calls)
        later = asyncio.create_task(
            emu.wait_for_call("sendMessage", since=mark, chat_id=scene.group)
        )
        past = await emu.wait_for_call("sendMessage", chat_id=scene.group.id)
        await bot.send_message(scene.group.id, "second")
        fresh = await asyncio.wait_for(later, 5)
        with pytest.raises(TimeoutError, match="no banChatMember call"):
            await emu.wait_for_call("banChatMember", timeout=0.01)
    assert past.params["text"] == "first" and fresh.params["text"] == "second"
    assert fresh.ok and fresh.result["text"] == "second" and fresh.at >= past.at
    assert [c.params["text"] for c in emu.calls_named("sendMessage", chat_id=scene.group)] == [
        "first",
        "second",
    ]


async def test_message_ids_are_per_chat(scene: Scene) -> None:
    emu = scene.emulator
    other = emu.create_supergroup("Other", creator=scene.alice)
    emu.join(other, scene.bob)
    a = emu.send_message(scene.group, scene.bob, "a")
    b = emu.send_message(other, scene.bob, "b")
    c = emu.send_message(scene.group, scene.bob, "c")
    assert c["message_id"] == a["message_id"] + 1
    assert b["message_id"] < a["message_id"]
    assert scene.group.id < -1_000_000_000_000 and scene.bob.id > 0


async def test_a_basic_group_migrates_to_a_supergroup(scene: Scene) -> None:
    emu = scene.emulator
    old = emu.create_group("Kittens", creator=scene.alice)
    emu.add_bot(old, scene.bot, by=scene.alice)
    emu.add_member(old, scene.bob, by=scene.alice)
    async with scene.ptb_bot() as bot:
        with pytest.raises(BadRequest, match="(?i)only for supergroups"):
            await bot.restrict_chat_member(old.id, scene.bob.id, ChatPermissions.no_permissions())
        await bot.get_updates(offset=-1)
        new = emu.migrate(old)
        updates = await bot.get_updates(offset=-2)
        with pytest.raises(ChatMigrated) as moved:
            await bot.send_message(old.id, "hello?")
        sent = await bot.send_message(new.id, "hello!")
    # Both service messages point at the other chat; bob is still a member.
    assert [u.message.migrate_to_chat_id for u in updates][0] == new.id
    assert updates[1].message.migrate_from_chat_id == old.id
    assert moved.value.new_chat_id == new.id
    assert sent.chat.type == "supergroup"
    assert emu.member(new, scene.bob)["status"] == "member"
