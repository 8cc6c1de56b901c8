"""/broadcast to 200 owners under Telegram's flood limits, runbot stopped halfway.

The superadmin confirms a broadcast to the owners of 200 protected groups;
once about half of them have it, runbot gets SIGTERM (a deploy), and is
started again. Every owner must get the message exactly once, and Telegram
(the emulator, flood limits on) must never answer 429.

Without the resume (the sender only sending broadcasts confirmed in its own
process), on the 2-core development machine:
    SIGTERM at 102 delivered: delivered=102 doubled=0 owed=98 answered_429=0
With the resume but the drain cancelling the sender mid-claim (its first version):
    SIGTERM at 101 delivered: delivered=191 doubled=0 owed=9 answered_429=0
    (10 deliveries left `sending`, turned `unknown` at the next start, not resent)
After both (queued deliveries in the database, every start sends what is queued;
the batch under way finishes before the bot stops):
    SIGTERM at 101 delivered: delivered=200 doubled=0 owed=0 answered_429=0 seconds=12.6s
"""

from __future__ import annotations

import asyncio
import collections
import signal

from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from bots.emulator.state import User
from bots.tests.runtime_support import eventually
from groups.models import EnforcedChannel, GroupAdmin, GroupChannel, ProtectedGroup
from tests.faults.harness import FaultWorld, figures, settle
from verification.models import Broadcast, Delivery

OWNERS = 200
STOP_AT = OWNERS // 2
TEXT = "Nezuko will be down for maintenance on Sunday 02:00-02:30 UTC."


def owners_of_groups(world: FaultWorld, count: int) -> list[User]:
    """`count` owners: alice (Cats) and people each the creator of a group of their
    own the bot protects; each has a private chat with the bot (had sent /start)."""
    emu, scene, db = world.emulator, world.scene, world.alias
    channel = EnforcedChannel.objects.using(db).get(chat_id=scene.channel.id)
    emu.private_chat(scene.bot, scene.alice)
    owners = [scene.alice]
    for i in range(count - 1):
        owner = emu.create_user(f"Owner {i}")
        chat = emu.create_supergroup(f"Group {i}", creator=owner)
        emu.promote(chat, scene.bot, by=owner)
        emu.private_chat(scene.bot, owner)
        group = ProtectedGroup.objects.using(db).create(
            bot_id=world.bot_pk(), chat_id=chat.id, title=f"Group {i}",
            admins_refreshed_at=timezone.now())
        GroupChannel.objects.using(db).create(group=group, channel=channel)
        GroupAdmin.objects.using(db).bulk_create([
            GroupAdmin(group=group, user_id=owner.id, is_creator=True),
            GroupAdmin(group=group, user_id=scene.bot.id),
        ])
        owners.append(owner)
    connections[db].close()
    return owners


def received(world: FaultWorld, owners: list[User]) -> collections.Counter[int]:
    """Owner id -> how many copies of the announcement Telegram accepted for them."""
    ids = {o.id for o in owners}
    return collections.Counter(
        int(c.params["chat_id"]) for c in world.emulator.calls_named("sendMessage", text=TEXT)
        if c.ok and int(c.params["chat_id"]) in ids)


def delivery_statuses(world: FaultWorld) -> collections.Counter[str]:
    rows = Delivery.objects.using(world.alias).values_list("status", flat=True)
    counts = collections.Counter(rows)
    connections[world.alias].close()
    return counts


async def confirm_broadcast(world: FaultWorld, sam: User) -> None:
    """Sam asks for the broadcast in Telegram and presses "Send to 200 people"."""
    emu = world.emulator
    since = len(emu.calls)
    emu.send_message(world.scene.bot, sam, f"/broadcast owners {TEXT}")
    preview = await emu.wait_for_call("sendMessage", since=since, chat_id=sam.id, text=TEXT,
                                      timeout=60)
    send = preview.params["reply_markup"]["inline_keyboard"][0][0]
    assert send["text"] == f"Send to {OWNERS} people", send
    emu.press_button(world.scene.bot, preview.result["message_id"], sam, send["callback_data"])


async def test_broadcast_resumes_after_sigterm_and_sends_each_owner_one_copy(
        world: FaultWorld) -> None:
    loop = asyncio.get_running_loop()
    owners = await sync_to_async(owners_of_groups)(world, OWNERS)
    sam = world.emulator.create_user("Sam", username="sam")
    world.runbot.env["NEZUKO_SUPERADMINS"] = str(sam.id)
    await world.runbot.start()
    started = loop.time()
    await confirm_broadcast(world, sam)

    async def halfway() -> bool:
        return sum(received(world, owners).values()) >= STOP_AT

    await eventually(halfway, within=120)
    await world.runbot.kill(signal.SIGTERM)
    at_stop = sum(received(world, owners).values())
    await world.runbot.start()

    async def measure() -> tuple[int, int]:
        copies = received(world, owners)
        return len(copies), sum(n > 1 for n in copies.values())

    (delivered, doubled), _ = await settle(measure, lambda v: v[0] == OWNERS, quiet=20,
                                          within=180)
    seconds = loop.time() - started
    answered_429 = sum(1 for c in world.emulator.calls if c.error_code == 429)
    print(
        f"\n/broadcast to {OWNERS} owners under flood limits, SIGTERM at {at_stop} delivered, "
        "started again\n"
        + figures(delivered=delivered, doubled=doubled, owed=OWNERS - delivered,
                  answered_429=answered_429, seconds=seconds)
    )
    # It stopped halfway: the second process had work left to resume.
    assert at_stop < OWNERS
    # Every owner has the announcement, once.
    assert delivered == OWNERS, f"{OWNERS - delivered} owners never got it"
    assert doubled == 0, f"{doubled} owners got it twice"
    # Within Telegram's limits: the limiter never let a call earn a 429.
    assert answered_429 == 0

    def finished() -> bool:
        done = Broadcast.objects.using(world.alias).filter(
            state=Broadcast.State.FINISHED).exists()
        connections[world.alias].close()
        return done

    # The last batch's outcomes are written just after its last send.
    await eventually(sync_to_async(finished), within=30)
    statuses = await sync_to_async(delivery_statuses)(world)
    # The database agrees: every delivery sent, the broadcast finished.
    assert statuses == {Delivery.Status.SENT: OWNERS}
