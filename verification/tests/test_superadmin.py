"""/stats and /broadcast for NEZUKO_SUPERADMINS, end to end through the runtime.

Sam is the superadmin; alice owns Cats (the scene's group), dave owns Dogs.
Owners receive a broadcast in their private chat with the bot, so each one
has sent the bot /start first, as Telegram requires.
"""

import datetime

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from bots.audit import Actor
from bots.models import AuditLog, BotUser, TelegramUser
from bots.tests.runtime_support import eventually
from groups.models import Attribution
from verification import broadcasts
from verification.models import Broadcast, Delivery, Outcome, VerificationEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sam(world, settings):
    person = world.emu.create_user("Sam", username="sam")
    settings.NEZUKO_SUPERADMINS = frozenset({person.id})
    return person


async def started(world, *people):
    """Each person sends the bot /start (a private chat exists from then on)."""
    for person in people:
        since = len(world.emu.calls)
        world.emu.send_message(world.scene.bot, person, "/start")
        await world.emu.wait_for_call("sendMessage", since=since, chat_id=person.id)


async def ask_broadcast(world, sam, text):
    """Sam sends `text` (a /broadcast); returns the preview's sendMessage call."""
    since = len(world.emu.calls)
    world.emu.send_message(world.scene.bot, sam, text)
    header = await world.emu.wait_for_call("sendMessage", since=since, chat_id=sam.id)
    after = world.emu.calls.index(header) + 1
    return header, await world.emu.wait_for_call("sendMessage", since=after, chat_id=sam.id)


def buttons(call):
    return [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]


async def press(world, sam, preview, which):
    data = next(b["callback_data"] for b in buttons(preview) if b["callback_data"].endswith(which))
    query = world.emu.press_button(world.scene.bot, preview.result["message_id"], sam, data)
    return await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)


async def until_finished(broadcast_pk):
    async def finished():
        return await Broadcast.objects.filter(
            pk=broadcast_pk, state=Broadcast.State.FINISHED).aexists()

    await eventually(finished, within=20)


async def statuses(broadcast_pk):
    rows = Delivery.objects.filter(broadcast_id=broadcast_pk).values_list("user_id", "status")
    return {uid: status async for uid, status in rows}


async def owner_of_dogs(world):
    dave = world.emu.create_user("Dave", username="dave")
    dogs = world.emu.create_supergroup("Dogs", creator=dave)
    world.emu.promote(dogs, world.scene.bot, by=dave)
    await world.protect(group=dogs, admins=[dave, world.scene.bot])
    return dave


async def test_a_broadcast_is_previewed_confirmed_and_delivered_to_the_owners(world, sam):
    s = world.scene
    await world.protect()
    dave = await owner_of_dogs(world)
    await started(world, s.alice, dave)
    header, preview = await ask_broadcast(world, sam, "/broadcast owners Hello owners,\nnews!")
    # It should preview the text exactly, name the audience and count it, and send nothing.
    assert "2" in header.params["text"] and "owners" in header.params["text"]
    assert preview.params["text"] == "Hello owners,\nnews!"
    assert [b["text"] for b in buttons(preview)] == ["Send to 2 people", "Cancel"]
    assert not world.calls("sendMessage", chat_id=s.alice.id, text="Hello owners,\nnews!")
    since = len(world.emu.calls)
    answer = await press(world, sam, preview, ":send")
    assert "Sending" in answer.params["text"]
    # Each owner gets it once, with an opt-out button, and the rows say sent.
    for owner in (s.alice, dave):
        call = await world.emu.wait_for_call("sendMessage", since=since, chat_id=owner.id,
                                             text="Hello owners,\nnews!")
        assert buttons(call)[0]["callback_data"] == broadcasts.OPT_OUT
    pk = (await Broadcast.objects.aget()).pk
    await until_finished(pk)
    assert await statuses(pk) == {s.alice.id: "sent", dave.id: "sent"}
    assert len(world.calls("sendMessage", text="Hello owners,\nnews!")) == 3  # preview + 2
    # The confirmation is audited, under the superadmin's name.
    row = await AuditLog.objects.aget(action="broadcast.sent")
    assert row.actor_telegram_id == sam.id and row.after["recipients"] == 2
    # The preview loses its buttons, and a second confirmation queues nothing twice.
    await world.emu.wait_for_call("editMessageReplyMarkup", chat_id=sam.id,
                                  message_id=preview.result["message_id"])
    actor = Actor(AuditLog.Source.TELEGRAM, telegram_id=sam.id)
    assert await broadcasts.aconfirm(pk, actor) is None
    assert await Delivery.objects.acount() == 2


async def test_cancel_sends_nothing(world, sam):
    s = world.scene
    await world.protect()
    await started(world, s.alice)
    _header, preview = await ask_broadcast(world, sam, "/broadcast Not this one")
    answer = await press(world, sam, preview, ":cancel")
    assert "Cancelled" in answer.params["text"]
    await world.settle()
    assert not world.calls("sendMessage", chat_id=s.alice.id, text="Not this one")
    broadcast = await Broadcast.objects.aget()
    assert broadcast.state == Broadcast.State.CANCELLED
    assert not await Delivery.objects.aexists()


async def test_people_who_are_not_superadmins_get_nothing_at_all(world, sam):
    s = world.scene
    await started(world, s.carol)
    since = len(world.emu.calls)
    for text in ("/broadcast all Buy my coin", "/stats"):
        world.emu.send_message(s.bot, s.carol, text)
    # In a group even the superadmin gets no answer: the commands are private only.
    world.emu.join(s.group, sam)
    world.emu.send_message(s.group, sam, "/stats")
    await world.settle()
    # No answer at all, as for a command the bot does not know; nothing is drafted.
    answered = {c.params.get("chat_id") for c in world.emu.calls[since:]
                if c.method == "sendMessage"}
    assert s.carol.id not in answered and s.group.id not in answered
    assert not await Broadcast.objects.aexists()


async def test_a_person_who_blocked_the_bot_is_skipped_and_marked(world, sam):
    s = world.scene
    await world.protect()
    dave = await owner_of_dogs(world)
    await started(world, s.alice, dave)
    # Dave blocked the bot and Telegram sent no my_chat_member about it: the 403 tells.
    world.emu.fail("sendMessage", chat_id=dave.id, error_code=403, times=1,
                   description="Forbidden: bot was blocked by the user")
    _header, preview = await ask_broadcast(world, sam, "/broadcast First")
    await press(world, sam, preview, ":send")
    first = (await Broadcast.objects.aget()).pk
    await until_finished(first)
    # Telegram's 403 skips his delivery, and the directory marks him blocked.
    assert await statuses(first) == {s.alice.id: "sent", dave.id: "skipped_blocked"}

    async def marked():
        return await BotUser.objects.filter(bot=world.bot_row, user__telegram_id=dave.id,
                                            blocked_at__isnull=False).aexists()

    await eventually(marked, within=10)
    # The next broadcast skips him without asking Telegram.
    since = len(world.emu.calls)
    header, preview = await ask_broadcast(world, sam, "/broadcast Second")
    assert "1 who blocked" in header.params["text"]
    await press(world, sam, preview, ":send")
    second = (await Broadcast.objects.exclude(pk=first).aget()).pk
    await until_finished(second)
    assert await statuses(second) == {s.alice.id: "sent", dave.id: "skipped_blocked"}
    assert not [c for c in world.emu.calls[since:]
                if c.method == "sendMessage" and c.params.get("chat_id") == dave.id]


async def test_a_block_telegram_announced_skips_the_person_without_a_call(world, sam):
    s = world.scene
    await world.protect()
    await started(world, s.alice)
    # Blocking sends the bot my_chat_member (kicked) in the private chat.
    world.emu.block(s.alice, s.bot)

    async def marked():
        return await BotUser.objects.filter(user__telegram_id=s.alice.id,
                                            blocked_at__isnull=False).aexists()

    await eventually(marked, within=10)
    since = len(world.emu.calls)
    _header, preview = await ask_broadcast(world, sam, "/broadcast Hello")
    assert [b["text"] for b in buttons(preview)][0] == "Send to 0 people"
    await press(world, sam, preview, ":send")
    pk = (await Broadcast.objects.aget()).pk
    await until_finished(pk)
    assert await statuses(pk) == {s.alice.id: "skipped_blocked"}
    assert not [c for c in world.emu.calls[since:]
                if c.method == "sendMessage" and c.params.get("chat_id") == s.alice.id]


async def test_the_opt_out_button_is_honoured(world, sam):
    s = world.scene
    await world.protect()
    await started(world, s.alice)
    _header, preview = await ask_broadcast(world, sam, "/broadcast News one")
    await press(world, sam, preview, ":send")
    message = await world.emu.wait_for_call("sendMessage", chat_id=s.alice.id, text="News one")
    query = world.emu.press_button(s.bot, message.result["message_id"], s.alice,
                                   broadcasts.OPT_OUT)
    answer = await world.emu.wait_for_call("answerCallbackQuery", callback_query_id=query)
    assert "no more announcements" in answer.params["text"]
    assert (await BotUser.objects.aget(user__telegram_id=s.alice.id)).broadcast_opt_out
    _header, preview = await ask_broadcast(world, sam, "/broadcast News two")
    assert [b["text"] for b in buttons(preview)][0] == "Send to 0 people"
    await press(world, sam, preview, ":send")
    second = await Broadcast.objects.aget(text="News two")
    await until_finished(second.pk)
    assert await statuses(second.pk) == {s.alice.id: "skipped_opted_out"}
    assert not world.calls("sendMessage", chat_id=s.alice.id, text="News two")


async def test_all_means_everyone_who_started_the_bot(world, sam):
    s = world.scene
    await started(world, s.bob, s.carol)
    # dave only pressed a button once (the directory knows him; he never started the bot).
    await sync_to_async(_directory)(world.bot_row, never_started=[777])

    async def directory_written():
        return await BotUser.objects.filter(started_at__isnull=False).acount() == 2

    await eventually(directory_written, within=10)
    _header, preview = await ask_broadcast(world, sam, "/broadcast all Hi everyone")
    await press(world, sam, preview, ":send")
    pk = (await Broadcast.objects.aget()).pk
    await until_finished(pk)
    assert await statuses(pk) == {s.bob.id: "sent", s.carol.id: "sent"}


def _directory(bot_row, never_started):
    for uid in never_started:
        user, _ = TelegramUser.objects.get_or_create(telegram_id=uid)
        BotUser.objects.create(bot=bot_row, user=user)


async def test_stats_figures_match_the_database(world, sam):
    group = await world.protect()
    now = timezone.now()
    await sync_to_async(_events)(world.bot_row, group, now)
    since = len(world.emu.calls)
    world.emu.send_message(world.scene.bot, sam, "/stats")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=sam.id)
    text = reply.params["text"]
    today, week = text.split("Last 7 days")
    # Today: 2 verified + 1 unmuted, 1 restricted, 1 error, 1 join attributed.
    assert "Verified: 3 · restricted: 1 · errors: 1" in today
    assert "Channel joins attributed: 1" in today
    # The week adds 3 days ago (1 verified, 2 kicked, 1 join); 10 days ago is out.
    assert "Verified: 4 · restricted: 3 · errors: 1" in week
    assert "Channel joins attributed: 2" in week
    assert "Bots: 1 active of 1" in today and "Groups: 1 protected of 1" in today
    assert "This process" in week and "Telegram calls:" in week


def _events(bot_row, group, now):
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = max(midnight + datetime.timedelta(seconds=1), now - datetime.timedelta(minutes=1))
    earlier = now - datetime.timedelta(days=3)
    old = now - datetime.timedelta(days=10)
    rows = [(today, Outcome.VERIFIED), (today, Outcome.VERIFIED), (today, Outcome.UNMUTED),
            (today, Outcome.RESTRICTED), (today, Outcome.ERROR), (today, Outcome.DELETED),
            (earlier, Outcome.VERIFIED), (earlier, Outcome.KICKED), (earlier, Outcome.KICKED),
            (old, Outcome.VERIFIED), (old, Outcome.RESTRICTED)]
    VerificationEvent.objects.bulk_create([
        VerificationEvent(created_at=at, bot=bot_row, group=group, chat_id=group.chat_id,
                          user_id=1000 + i, outcome=outcome)
        for i, (at, outcome) in enumerate(rows)])
    for i, (joined, how) in enumerate([(today, "exact"), (earlier, "likely"), (old, "exact"),
                                      (today, "")]):
        Attribution.objects.create(group=group, channel_chat_id=-100, user_id=2000 + i,
                                   started_at=joined, joined_at=joined if how else None, how=how)
