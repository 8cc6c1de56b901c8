"""The member ledger through a database outage: nothing Nezuko did is forgotten."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from prometheus_client import REGISTRY

from groups.ledger import LedgerWriter, writer
from groups.models import GroupMember
from groups.services import ledger_writes
from groups.tests.outage import database_away
from tests.factories import make_group

pytestmark = pytest.mark.django_db(transaction=True)


def set_aside_metric() -> float:
    return REGISTRY.get_sample_value("nezuko_records_set_aside_total", {"buffer": "ledger"}) or 0


def replay_all(w: LedgerWriter = writer) -> int:
    total = 0
    while written := w.replay():
        total += written
    return total


async def run_until_stopped(w: LedgerWriter) -> None:
    """The replay service of a runbot that is asked to stop at once: one last pass."""
    stop = asyncio.Event()
    stop.set()
    await w.run(stop)
    # asgiref's worker thread keeps its connection; PostgreSQL must drop the test database.
    await sync_to_async(connections.close_all)()


def test_writes_made_while_the_database_is_away_land_in_order_when_it_returns():
    group = make_group()
    ledger_writes.mark_restricted(group.pk, 1, name="Before", username="", reason="join")
    with database_away():
        # A raid meets the outage: every call returns, nothing raises.
        for user_id in range(2, 127):
            ledger_writes.mark_restricted(group.pk, user_id, name=f"Raider {user_id}",
                                     username=f"r{user_id}", reason="join")
        ledger_writes.set_warning_message(group.pk, [2, 3], 42)
        ledger_writes.clear_restriction(group.pk, 5)
        ledger_writes.set_member_status(group.pk, 7, "left")
        ledger_writes.note_member(group.pk, 999, name="Quiet")
        spooled = writer.pending
        # Replaying while it is still away writes nothing and loses nothing.
        assert writer.replay() == 0
        assert writer.pending == spooled
    # Back, but something is spooled: a new write waits its turn behind it.
    ledger_writes.mark_restricted(group.pk, 5, name="Raider 5", username="r5", reason="message")
    assert GroupMember.objects.count() == 1
    replayed = replay_all()
    rows = GroupMember.objects.filter(group=group)
    muted = rows.filter(restricted_by_nezuko=True).count()
    print(f"\nledger: spooled during outage={spooled} replayed={replayed} "
          f"rows={rows.count()} restricted_by_nezuko={muted}")
    # It should hold a row for every member Nezuko muted, and the later writes win.
    assert spooled == 129
    assert replayed == 130
    assert rows.filter(restricted_by_nezuko=True).count() == 126
    assert rows.get(user_id=5).restriction_reason == "message"
    assert rows.get(user_id=7).status == "left"
    assert list(rows.filter(warning_message_id=42).values_list("user_id", flat=True)
                .order_by("user_id")) == [2, 3]
    assert rows.get(user_id=999).first_name == "Quiet"
    assert writer.pending == 0
    assert writer.spool.path.stat().st_size == 0
    assert connection.is_usable()


def test_what_is_spooled_at_shutdown_is_written_by_the_next_start(settings):
    group = make_group()
    with database_away():
        for user_id in range(1, 21):
            ledger_writes.mark_restricted(group.pk, user_id, name="x", username="", reason="join")
        # runbot stops while the database is still away: the last attempt fails too.
        assert writer.replay() == 0
        assert writer.pending == 20
        writer.close_spool()

    # The next start finds the spool and writes it before anything else.
    restarted = LedgerWriter()
    assert restarted.pending == 20
    asyncio.run(run_until_stopped(restarted))
    print(f"\nledger: left spooled at shutdown=20, written by the next start="
          f"{GroupMember.objects.filter(restricted_by_nezuko=True).count()}")
    assert GroupMember.objects.filter(group=group, restricted_by_nezuko=True).count() == 20
    assert restarted.pending == 0
    restarted.close_spool()


def test_an_operation_that_can_never_be_stored_is_set_aside_and_the_others_land():
    group = make_group()
    gone = make_group()
    gone_pk = gone.pk
    gone.delete()
    before = set_aside_metric()
    with database_away():
        ledger_writes.mark_restricted(group.pk, 1, name="Good", username="", reason="join")
        # The group was deleted meanwhile: a row that can never be stored.
        ledger_writes.mark_restricted(gone_pk, 2, name="Orphan", username="", reason="join")
        ledger_writes.mark_restricted(group.pk, 3, name="Good too", username="", reason="join")
        if connection.vendor == "postgresql":
            # PostgreSQL refuses NUL anywhere in text.
            ledger_writes.set_member_status(group.pk, 1, "left\x00")
        ledger_writes.mark_restricted(group.pk, 4, name="Last", username="", reason="join")
    replay_all()
    poison = 2 if connection.vendor == "postgresql" else 1
    print(f"\nledger: set aside={writer.set_aside} written="
          f"{GroupMember.objects.filter(restricted_by_nezuko=True).count()}")
    # It should write every good operation and set the poison aside once, counted.
    assert sorted(GroupMember.objects.filter(restricted_by_nezuko=True)
                  .values_list("user_id", flat=True)) == [1, 3, 4]
    assert GroupMember.objects.get(user_id=1).status == "restricted"
    assert set_aside_metric() - before == poison
    assert writer.pending == 0


def test_a_direct_write_the_database_refuses_is_set_aside_not_raised():
    gone = make_group()
    gone_pk = gone.pk
    gone.delete()
    before = set_aside_metric()
    ledger_writes.mark_restricted(gone_pk, 1, name="Orphan", username="", reason="join")
    assert set_aside_metric() - before == 1
    assert writer.pending == 0


def test_names_the_database_refuses_are_cleaned_before_they_are_stored():
    group = make_group()
    ledger_writes.mark_restricted(group.pk, 1, name="Ca\x00rol \ud83d", username="ca\x00rol",
                             reason="join")
    member = GroupMember.objects.get(user_id=1)
    assert (member.first_name, member.username, member.restricted_by_nezuko) == (
        "Carol ", "carol", True)
