"""Per-person throttling of commands (issue 15): a member who is not an admin gets
one answer per window; admins are never throttled; answers to members go soon."""

import pytest
from prometheus_client import REGISTRY

from bots.throttle import PersonThrottle
from verification import commands
from verification.tests.test_commands import say


def throttled_count() -> float:
    return REGISTRY.get_sample_value("nezuko_throttled_total", {"kind": "command"}) or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_answer_per_person_per_window_and_chat():
    clock = Clock()
    throttle = PersonThrottle("command", clock=clock)
    assert throttle.allow(1, 7, 60)
    assert not throttle.allow(1, 7, 60)
    # Another person, or the same person in another chat, has a window of their own.
    assert throttle.allow(1, 8, 60) and throttle.allow(2, 7, 60)
    clock.now += 59.9
    assert not throttle.allow(1, 7, 60)
    clock.now += 0.2
    assert throttle.allow(1, 7, 60)
    # 0 switches it off; forget() clears a window.
    assert throttle.allow(3, 7, 0) and throttle.allow(3, 7, 0)
    throttle.forget(1, 7)
    assert throttle.allow(1, 7, 60)


e2e = pytest.mark.django_db(transaction=True)


async def _send_many(world, user, text: str, times: int) -> int:
    """`user` sends `text` `times` times in the group; how many answers came."""
    s = world.scene
    since = len(world.emu.calls)
    for _ in range(times):
        s.emulator.send_message(s.group, user, text)
    await world.settle()
    return len([c for c in world.emu.calls[since:]
                if c.method == "sendMessage" and c.params.get("chat_id") == s.group.id])


@e2e
async def test_six_status_from_a_member_within_a_minute_get_at_most_one_reply(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.channel, s.bob)  # a subscriber, so his messages are allowed
    await world.settle()
    before = throttled_count()
    calls_before = len(world.calls("getChatMember", chat_id=s.group.id, user_id=s.bob.id))
    assert await _send_many(world, s.bob, "/status", 6) == 1
    # The five ignored cost no Telegram call, and show in metrics.
    assert len(world.calls("getChatMember", chat_id=s.group.id, user_id=s.bob.id)) \
        == calls_before + 1
    assert throttled_count() - before == 5
    # Other commands share the window.
    assert await _send_many(world, s.bob, "/help", 2) == 0


@e2e
async def test_admins_are_never_throttled(world):
    s = world.scene
    await world.protect()
    assert await _send_many(world, s.alice, "/status", 3) == 3


@e2e
async def test_an_admin_of_an_unprotected_group_can_try_again(world):
    s = world.scene
    # Nothing is cached about this group: Telegram's word that alice is an admin counts.
    for _ in range(2):
        text = await say(world, s.group, s.alice, "/protect")
        assert text.startswith("Usage: /protect")


@e2e
async def test_the_window_follows_the_groups_setting(world):
    s = world.scene
    await world.protect(throttle=0)
    s.emulator.join(s.channel, s.bob)
    await world.settle()
    assert await _send_many(world, s.bob, "/help", 3) == 3


@e2e
async def test_answers_to_members_are_deleted_soon(world, monkeypatch):
    s = world.scene
    monkeypatch.setattr(commands, "MEMBER_REPLY_TTL", 0.05)
    monkeypatch.setattr(commands, "REPLY_TTL", 30)
    since = len(world.emu.calls)
    s.emulator.send_message(s.group, s.bob, "/status")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    await world.emu.wait_for_call("deleteMessage", message_id=reply.result["message_id"])
