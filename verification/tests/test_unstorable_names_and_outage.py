"""End to end: names PostgreSQL refuses, and the ledger through a database outage.

A member whose name holds a NUL (or half a surrogate pair) is restricted, has
a ledger row and an event, and is unmuted when they subscribe. A member muted
while the database is away gets their ledger row once it is back, so
subscribing later still unmutes them.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from groups.ledger import writer
from groups.models import GroupMember
from groups.tests.outage import database_away
from verification.models import VerificationEvent
from verification.updates import Person

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_member_with_a_nul_in_their_name_is_restricted_recorded_and_unmuted(world):
    s = world.scene
    await world.protect()
    dave = s.emulator.create_user("Da\x00ve", last_name="\ud83d")
    s.emulator.join(s.group, dave)
    await world.emu.wait_for_call("restrictChatMember", user_id=dave.id)
    await world.settle()
    # He should be in the ledger (cleaned name) and in the events.
    member = await GroupMember.objects.aget(user_id=dave.id)
    assert member.restricted_by_nezuko
    assert member.first_name == "Dave "
    await sync_to_async(world.recorder.flush)()
    assert await VerificationEvent.objects.filter(user_id=dave.id, outcome="restricted").aexists()
    # Subscribing frees him like anyone else.
    mark = len(world.emu.calls)
    s.emulator.join(s.channel, dave)
    await world.emu.wait_for_call("restrictChatMember", since=mark, user_id=dave.id)
    await world.settle()
    assert not (await GroupMember.objects.aget(user_id=dave.id)).restricted_by_nezuko


def test_the_fast_path_cleans_the_name_it_notes():
    # The fast path reads people with Person.from_raw.
    person = Person.from_raw({"id": 7, "first_name": "Ca\x00rol", "last_name": "\udc00",
                              "username": 5})
    assert (person.name, person.username) == ("Carol ", "")


async def test_a_member_muted_while_the_database_is_away_is_unmuted_after_it_returns(world):
    s = world.scene
    await world.protect()
    # Someone joins first, so the group's configuration is in memory.
    erin = s.emulator.create_user("Erin")
    s.emulator.join(s.group, erin)
    await world.emu.wait_for_call("restrictChatMember", user_id=erin.id)
    await world.settle()

    # The ORM's thread loses the database; carol joins meanwhile.
    away = database_away()
    await sync_to_async(away.__enter__)()
    try:
        s.emulator.join(s.group, s.carol)
        await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
        await world.settle()
        spooled = await sync_to_async(lambda: writer.pending)()
        # Enforcement went on; the ledger write waits on disk.
        assert spooled >= 1
        assert s.emulator.member(s.group, s.carol)["status"] == "restricted"
    finally:
        await sync_to_async(away.__exit__)(None, None, None)

    # The database is back: the replay loop's step writes the ledger in order.
    replayed = 0
    while written := await writer.areplay():
        replayed += written
    events = await sync_to_async(world.recorder.flush)()
    member = await GroupMember.objects.aget(user_id=s.carol.id)
    print(f"\noutage: ledger operations spooled={spooled} replayed={replayed} "
          f"events written after recovery={events}")
    assert member.restricted_by_nezuko
    assert await VerificationEvent.objects.filter(user_id=s.carol.id,
                                                  outcome="restricted").aexists()
    # Carol subscribes: she is unmuted, because the ledger knows Nezuko muted her.
    mark = len(world.emu.calls)
    s.emulator.join(s.channel, s.carol)
    await world.emu.wait_for_call("restrictChatMember", since=mark, user_id=s.carol.id)
    await world.settle()
    assert s.emulator.member(s.group, s.carol).get("can_send_messages", True)
    assert not (await GroupMember.objects.aget(user_id=s.carol.id)).restricted_by_nezuko
