"""The people directory end to end (issue 16), through the runtime runbot runs.

Referral links, blocks learnt from my_chat_member and from a 403, /forget.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from bots import referrals
from bots.models import BotUser, TelegramUser
from groups.models import GroupMember
from verification.models import VerificationEvent

pytestmark = pytest.mark.django_db(transaction=True)


def start_parameter(link: str) -> str:
    return parse_qs(urlparse(link).query)["start"][0]


async def start(world, user, text: str = "/start") -> None:
    """`user` opens the bot with `text` and gets its answer."""
    since = len(world.emu.calls)
    world.emu.send_message(world.scene.bot, user, text)
    await world.emu.wait_for_call("sendMessage", since=since, chat_id=user.id)
    await world.settle()


async def person(telegram_id: int) -> TelegramUser | None:
    return await TelegramUser.objects.filter(telegram_id=telegram_id).afirst()


async def bot_user(world, telegram_id: int) -> BotUser:
    return await BotUser.objects.aget(bot=world.bot_row, user__telegram_id=telegram_id)


async def test_a_person_who_opens_an_owners_link_is_recorded_with_that_referrer(world):
    s = world.scene
    owner = await sync_to_async(get_user_model().objects.create_user)("alice-owner")
    link = referrals.owner_link(s.bot.username, owner.pk)
    await start(world, s.carol, f"/start {start_parameter(link)}")
    carol = await person(s.carol.id)
    assert (carol.first_name, carol.username, carol.language_code) == ("Carol", "carol", "en")
    assert carol.referred_by_user_id == owner.pk and carol.referred_at is not None
    assert (await bot_user(world, s.carol.id)).started_at is not None
    # A later link (a group's) does not replace the first referrer.
    await start(world, s.carol, f"/start {referrals.payload(referrals.GROUP, 5)}")
    carol = await person(s.carol.id)
    assert (carol.referred_by_user_id, carol.referred_by_group_id) == (owner.pk, None)


async def test_a_forged_referral_is_ignored_and_start_still_answers(world):
    s = world.scene
    owner = await sync_to_async(get_user_model().objects.create_user)("alice-owner")
    genuine = referrals.payload(referrals.OWNER, owner.pk)
    # Someone copies the signature onto another owner's id.
    forged = f"o{owner.pk + 1}-{genuine.split('-', 1)[1]}"
    await start(world, s.carol, f"/start {forged}")
    # The welcome was sent all the same (start() waited for it); no referral.
    carol = await person(s.carol.id)
    assert carol is not None and carol.referred_at is None
    assert (await bot_user(world, s.carol.id)).started_at is not None


async def test_a_block_and_an_unblock_arrive_as_my_chat_member_in_the_private_chat(world):
    s = world.scene
    await start(world, s.carol)
    assert (await bot_user(world, s.carol.id)).blocked_at is None
    world.emu.block(s.carol, s.bot)
    await world.settle()
    assert (await bot_user(world, s.carol.id)).blocked_at is not None
    world.emu.unblock(s.carol, s.bot)
    await world.settle()
    assert (await bot_user(world, s.carol.id)).blocked_at is None


async def test_a_403_on_a_private_message_marks_the_person_blocked(world):
    s = world.scene
    gated = s.emulator.create_supergroup("Gated Cats", creator=s.alice, join_by_request=True)
    s.emulator.promote(gated, s.bot, by=s.alice)
    await world.protect(group=gated)
    await start(world, s.carol)
    # Blocked while nobody listened: only the 403 will tell.
    world.emu.block(s.carol, s.bot, tell_bot=False)
    since = len(world.emu.calls)
    s.emulator.request_join(gated, s.carol)
    refused = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.carol.id)
    assert (refused.error_code, refused.description) == (
        403, "Forbidden: bot was blocked by the user")
    await world.settle()
    row = await bot_user(world, s.carol.id)
    assert row.blocked_at is not None and row.started_at is not None


async def test_forget_removes_the_persons_data_and_keeps_what_enforcement_needs(world):
    s = world.scene
    group = await world.protect()
    # Carol joins without the channel and speaks: restricted, named in the ledger and events.
    s.emulator.join(s.group, s.carol)
    s.emulator.send_message(s.group, s.carol, "hello")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await start(world, s.carol)
    await world.recorder.aflush()
    member = await GroupMember.objects.aget(group=group, user_id=s.carol.id)
    assert member.first_name == "Carol" and member.restricted_by_nezuko
    assert await person(s.carol.id) is not None
    assert await VerificationEvent.objects.filter(user_id=s.carol.id, user_name="Carol").aexists()

    since = len(world.emu.calls)
    world.emu.send_message(s.bot, s.carol, "/forget")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.carol.id)
    assert "deleted what I knew about you" in reply.params["text"]
    await world.engine.idle()

    assert await person(s.carol.id) is None
    assert not await BotUser.objects.filter(user__telegram_id=s.carol.id).aexists()
    member = await GroupMember.objects.aget(group=group, user_id=s.carol.id)
    assert (member.first_name, member.username) == ("", "")
    # The ledger still says the restriction is Nezuko's: it can lift it later.
    assert member.restricted_by_nezuko
    assert not await VerificationEvent.objects.filter(user_id=s.carol.id).exclude(
        user_name="").aexists()
    # Others are untouched.
    assert await person(world.probe.id) is not None


async def test_people_the_engine_decides_on_in_a_group_are_in_the_directory(world):
    s = world.scene
    await world.protect()
    s.emulator.join(s.group, s.carol)
    s.emulator.send_message(s.group, s.carol, "hi")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()
    carol = await person(s.carol.id)
    assert carol is not None and carol.first_name == "Carol"
    row = await bot_user(world, s.carol.id)
    assert row.started_at is None and row.blocked_at is None


async def test_a_second_forget_within_the_minute_does_not_bring_the_person_back(world):
    s = world.scene
    await start(world, s.carol)
    since = len(world.emu.calls)
    world.emu.send_message(s.bot, s.carol, "/forget")
    await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.carol.id)
    await world.engine.idle()
    assert await person(s.carol.id) is None
    # A double tap: the second /forget is throttled (no answer), and the message
    # asking to be forgotten must not itself note the person again.
    world.emu.send_message(s.bot, s.carol, "/Forget")  # commands match in any case
    await world.settle()
    await world.engine.people.aflush()
    assert await person(s.carol.id) is None
    assert not await BotUser.objects.filter(user__telegram_id=s.carol.id).aexists()
