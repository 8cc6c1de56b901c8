"""Owed actions: what Telegram did not carry out is retried until done or moot."""

import datetime

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from groups.models import GroupMember, ProtectedGroup
from verification import owed

pytestmark = pytest.mark.django_db(transaction=True)


def later(seconds: float = 3600) -> datetime.datetime:
    """A moment when every owed action is due, however long its backoff."""
    return timezone.now() + datetime.timedelta(seconds=seconds)


async def ledger(world, user) -> GroupMember:
    return await GroupMember.objects.aget(group__chat_id=world.scene.group.id, user_id=user.id)


async def carol_joins_while_telegram_fails(world) -> None:
    """Cats is protected; Carol, no subscriber, joins while every restriction gets a 502."""
    s = world.scene
    await world.protect()
    world.emu.fail("restrictChatMember", chat_id=s.group.id, error_code=502, times=None)
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id, ok=False)
    await world.settle()


async def test_a_restriction_telegram_failed_is_owed_then_carried_out(world):
    s = world.scene
    await carol_joins_while_telegram_fails(world)
    # The failed restriction is written down, not dropped...
    row = await ledger(world, s.carol)
    assert row.owed_action == "restrict" and row.owed_attempts == 1
    assert not row.restricted_by_nezuko

    # ...exported for alerts...
    assert await owed.report(world.engine) == 1
    assert REGISTRY.get_sample_value(
        "nezuko_owed_actions", {"bot": world.bot_row.username}) == 1

    # ...and carried out once Telegram answers again.
    world.emu.clear_faults()
    assert await owed.settle_due(world.engine, now=later()) == 1
    await world.settle()
    assert await owed.report(world.engine) == 0
    assert s.emulator.member(s.group, s.carol)["status"] == "restricted"
    row = await ledger(world, s.carol)
    assert row.restricted_by_nezuko and row.owed_action == ""
    # Nothing is due any more.
    assert await owed.settle_due(world.engine, now=later()) == 0


async def test_a_retry_that_fails_again_waits_longer(world):
    s = world.scene
    await carol_joins_while_telegram_fails(world)
    first = await ledger(world, s.carol)

    await owed.settle_due(world.engine, now=later())
    await world.settle()
    second = await ledger(world, s.carol)
    # Still owed, one more try counted, the next try further away.
    assert second.owed_action == "restrict" and second.owed_attempts == 2
    assert second.owed_retry_at > first.owed_retry_at
    assert len(world.calls("restrictChatMember", user_id=s.carol.id)) == 2


async def test_an_owed_restriction_is_dropped_once_the_member_subscribes(world):
    s = world.scene
    await carol_joins_while_telegram_fails(world)
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    world.emu.clear_faults()
    calls = len(world.calls("restrictChatMember"))

    await owed.settle_due(world.engine, now=later())
    await world.settle()
    # Moot: she subscribed, so nobody restricts her and nothing is owed.
    assert len(world.calls("restrictChatMember")) == calls
    assert (await ledger(world, s.carol)).owed_action == ""
    assert s.emulator.member(s.group, s.carol)["status"] == "member"


async def test_an_unmute_telegram_failed_is_owed_then_carried_out(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id, ok=True)
    await world.settle()
    # She subscribes while Telegram fails every restrictChatMember (unmutes included).
    world.emu.fail("restrictChatMember", chat_id=s.group.id, error_code=500, times=None)
    s.emulator.join(s.channel, s.carol)
    await world.settle()
    assert (await ledger(world, s.carol)).owed_action == "unmute"
    assert not s.emulator.member(s.group, s.carol).get("can_send_messages", True)

    world.emu.clear_faults()
    await owed.settle_due(world.engine, now=later())
    await world.settle()
    # Unmuted after all, and the ledger no longer claims a restriction.
    assert s.emulator.member(s.group, s.carol).get("can_send_messages", True)
    row = await ledger(world, s.carol)
    assert not row.restricted_by_nezuko and row.owed_action == ""


async def test_a_refusal_is_not_owed(world):
    s = world.scene
    await world.protect()
    world.emu.fail("restrictChatMember", chat_id=s.group.id, error_code=400, times=None,
                   description="Bad Request: not enough rights to restrict/unrestrict chat member")
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id, ok=False)
    await world.settle()
    # It would fail again until someone fixes the rights: /doctor says so instead.
    assert not await GroupMember.objects.exclude(owed_action="").aexists()


async def crash_mid_restriction(world, user) -> None:
    """The state a process killed mid-restriction leaves: the intent is on the ledger,
    the outcome is not, and process memory is gone."""
    s = world.scene
    await GroupMember.objects.aupdate_or_create(
        group=await ProtectedGroup.objects.aget(chat_id=s.group.id), user_id=user.id,
        defaults={"restricted_by_nezuko": False, "owed_action": "restrict",
                  "owed_retry_at": later(180)})
    world.engine.restricted.clear()


def calls_since(world, since: int, method: str, **params) -> list:
    return [c for c in world.emu.calls[since:] if c.method == method
            and all(c.params.get(k) == v for k, v in params.items())]


async def test_a_restriction_under_way_at_a_crash_is_not_repeated(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id, ok=True)
    s.emulator.leave(s.group, s.carol)
    await world.settle()
    # Telegram restricted her; the process died before the ledger said so. Her
    # rejoin stands for the join update handled again after the restart.
    await crash_mid_restriction(world, s.carol)

    since = len(world.emu.calls)
    s.emulator.join(s.group, s.carol)
    await world.settle()
    # Telegram is asked, and says the restriction is in place: no second one.
    assert calls_since(world, since, "getChatMember", chat_id=s.group.id, user_id=s.carol.id)
    assert not calls_since(world, since, "restrictChatMember", user_id=s.carol.id)
    row = await ledger(world, s.carol)
    assert row.restricted_by_nezuko and row.owed_action == ""


async def test_a_restriction_the_crash_interrupted_is_carried_out(world):
    s = world.scene
    s.emulator.join(s.group, s.carol)
    await world.settle()
    await world.protect()
    # The process died after writing the intent, before its call reached Telegram.
    await crash_mid_restriction(world, s.carol)

    since = len(world.emu.calls)
    s.emulator.send_message(s.group, s.carol, "hello?")
    await world.emu.wait_for_call("restrictChatMember", since=since, user_id=s.carol.id,
                                  ok=True)
    await world.settle()
    # Telegram says she is not restricted: the restriction is made now, and recorded.
    assert calls_since(world, since, "getChatMember", chat_id=s.group.id, user_id=s.carol.id)
    assert not s.emulator.member(s.group, s.carol).get("can_send_messages", True)
    row = await ledger(world, s.carol)
    assert row.restricted_by_nezuko and row.owed_action == ""
