"""Members seen are bookkeeping: buffered, written as one bulk upsert, kept through
an outage, and never written on top of something that happened after them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from groups.ledger import writer
from groups.models import GroupMember
from groups.services import ledger_writes
from groups.services.ledger_writes import MemberSightings
from groups.tests.outage import database_away
from tests.factories import make_group

pytestmark = pytest.mark.django_db(transaction=True)


def replay_all() -> int:
    total = 0
    while written := writer.replay():
        total += written
    return total


def test_a_thousand_members_seen_are_written_in_one_statement_per_batch():
    group = make_group()
    GroupMember.objects.create(group=group, user_id=7, first_name="Old name")
    sightings = MemberSightings()
    for user_id in range(1, 1001):
        sightings.add(group.pk, user_id, name=f"Member {user_id}", username=f"m{user_id}")
    with CaptureQueriesContext(connection) as queries:
        assert sightings.flush() == 1000
    writes = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    # One statement per batch (500 rows; fewer where SQLite caps a statement's
    # variables), not one per member.
    fields = [f for f in GroupMember._meta.concrete_fields if not f.primary_key]
    batch = min(500, connection.ops.bulk_batch_size(fields, [None] * 1000))
    assert len(writes) == -(-1000 // batch) <= 20
    assert GroupMember.objects.filter(group=group).count() == 1000
    # An existing row is updated in place (last seen, name).
    assert GroupMember.objects.get(group=group, user_id=7).first_name == "Member 7"
    assert sightings.flush() == 0


def test_a_member_seen_twice_between_flushes_is_one_row_with_the_latest_name():
    group = make_group()
    sightings = MemberSightings()
    sightings.add(group.pk, 1, name="Ann")
    sightings.add(group.pk, 1, name="Anne")
    assert sightings.flush() == 1
    assert GroupMember.objects.get(group=group, user_id=1).first_name == "Anne"


def test_a_later_write_about_the_member_is_not_overwritten_by_their_sighting(monkeypatch):
    group = make_group()
    monkeypatch.setattr(ledger_writes, "sightings", MemberSightings())
    ledger_writes.sightings.add(group.pk, 1, name="Raider")
    ledger_writes.sightings.add(group.pk, 2, name="Leaver")
    GroupMember.objects.create(group=group, user_id=2)
    # After being seen: one is restricted, the other leaves.
    ledger_writes.mark_restricted(group.pk, 1, name="Raider", username="", reason="join")
    ledger_writes.set_member_status(group.pk, 2, GroupMember.Status.LEFT)
    ledger_writes.sightings.flush()
    raider = GroupMember.objects.get(group=group, user_id=1)
    assert (raider.status, raider.restricted_by_nezuko) == ("restricted", True)
    assert GroupMember.objects.get(group=group, user_id=2).status == "left"


def test_members_seen_during_a_database_outage_are_spooled_and_written_when_it_returns():
    group = make_group()
    sightings = MemberSightings()
    with database_away():
        for user_id in range(1, 301):
            sightings.add(group.pk, user_id, name=f"Member {user_id}")
        assert sightings.flush() == 300  # taken from memory: on disk now
        assert writer.pending == 1
        assert writer.replay() == 0
    assert GroupMember.objects.count() == 0
    assert replay_all() == 1
    assert GroupMember.objects.filter(group=group).count() == 300


def test_past_its_bound_new_sightings_are_dropped_and_counted():
    group = make_group()
    sightings = MemberSightings(max_buffered=2)
    for user_id in (1, 2, 3):
        sightings.add(group.pk, user_id)
    sightings.add(group.pk, 1, name="again")  # already buffered: still updated
    assert (len(sightings), sightings.dropped) == (2, 1)
