"""When Telegram fails: 429s, 5xx, a channel that is gone, a bot without rights."""

import logging
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import OperationalError
from telegram.error import NetworkError

from groups.models import ProtectedGroup
from verification.handlers import on_error
from verification.membership import memberships
from verification.models import VerificationEvent

pytestmark = pytest.mark.django_db(transaction=True)


async def forget_memberships():
    memberships.clear_local()
    cache.clear()


async def test_a_429_is_waited_out_and_the_restriction_still_happens(world):
    s = world.scene
    await world.protect()
    world.emu.fail("restrictChatMember", chat_id=s.group.id, error_code=429, retry_after=1)
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", ok=True, user_id=s.carol.id)
    # Telegram said wait; the limiter waited and tried again.
    assert world.calls("restrictChatMember", error_code=429)
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"


async def test_a_5xx_fails_closed_by_default(world):
    s = world.scene
    await world.protect()
    world.emu.fail("getChatMember", chat_id=s.channel.id, error_code=502)
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    await world.recorder.aflush()
    event = await VerificationEvent.objects.aget(user_id=s.carol.id)
    assert event.outcome == "restricted" and event.detail == "unknown"


async def test_a_5xx_fails_open_when_the_group_says_so_and_checks_again_later(world):
    s = world.scene
    s.emulator.join(s.group, s.carol)
    await world.settle()
    await world.protect(fail_mode="open")
    world.emu.fail("getChatMember", chat_id=s.channel.id, error_code=500)
    s.emulator.send_message(s.group, s.carol, "first")
    await world.settle()
    # Allowed, and nothing cached: the next message asks again and restricts.
    assert not world.calls("restrictChatMember")
    s.emulator.send_message(s.group, s.carol, "second")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    assert len(world.calls("getChatMember", chat_id=s.channel.id, user_id=s.carol.id)) == 2


async def test_a_deleted_channel_or_a_removed_bot_is_flagged_and_follows_the_fail_mode(world):
    s = world.scene
    await world.protect()
    # Alice removes the bot from the channel.
    s.emulator.demote(s.channel, s.bot, by=s.alice)
    s.emulator.leave(s.channel, s.bot)
    await world.settle()
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert group.needs_attention and "channel" in group.attention_reason
    # Membership can no longer be read: the group fails closed.
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)


async def test_a_bot_without_rights_in_the_group_is_flagged_not_crashed(world):
    s = world.scene
    await world.protect()
    s.emulator.demote(s.group, s.bot, by=s.alice)
    await world.settle()
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert group.needs_attention and "can_restrict_members" in group.attention_reason
    # A non-subscriber joins: the restriction is refused, an error event says so.
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id, ok=False)
    await world.settle()
    await world.recorder.aflush()
    assert await VerificationEvent.objects.filter(outcome="error").aexists()
    # Promoting it again clears the flag.
    s.emulator.promote(s.group, s.bot, by=s.alice)
    await world.settle()
    group = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert not group.needs_attention


async def test_a_deleted_channel_is_unknown_not_a_miss(world):
    s = world.scene
    s.emulator.join(s.group, s.carol)
    await world.settle()
    await world.protect(fail_mode="open")
    # The emulator cannot delete a chat; Telegram answers this for a deleted channel.
    world.emu.fail("getChatMember", chat_id=s.channel.id, error_code=400,
                   description="Bad Request: chat not found", times=None)
    s.emulator.send_message(s.group, s.carol, "hello")
    await world.emu.wait_for_call("getChatMember", chat_id=s.channel.id, user_id=s.carol.id)
    await world.settle()
    # Failing open, carol may speak: "chat not found" says nothing about her.
    assert not world.calls("restrictChatMember")
    # Whereas "user not found" is a definite no.
    world.emu.clear_faults()
    world.emu.fail("getChatMember", chat_id=s.channel.id, error_code=400,
                   description="Bad Request: user not found")
    s.emulator.send_message(s.group, s.carol, "again")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)


@pytest.mark.parametrize(("error", "level", "traceback"), [
    # Expected and retried by the runtime: one warning line, no traceback.
    (OperationalError("server closed the connection"), "warning", False),
    (NetworkError("Bad Gateway"), "warning", False),
    # A bug: an error with its traceback.
    (KeyError("missing"), "error", True),
])
async def test_a_failed_update_is_logged_by_what_failed(caplog, error, level, traceback):
    caplog.set_level(logging.WARNING)
    await on_error(None, SimpleNamespace(error=error))
    [record] = [r for r in caplog.records if isinstance(r.msg, dict)
                and r.msg.get("event") == "update.failed"]
    assert record.levelname.lower() == level
    assert bool(record.exc_info or record.msg.get("exc_info")) is traceback
