"""Events through a database outage, and rows that can never be stored."""

from __future__ import annotations

import pytest
from django.db import connection
from prometheus_client import REGISTRY

from bots.spool import Spool
from groups.tests.outage import database_away
from tests.factories import make_group
from verification.events import VerificationEventData
from verification.models import VerificationEvent
from verification.recorder import EventRecorder

pytestmark = pytest.mark.django_db(transaction=True)


def event(user_id: int, group_id: int | None = None, **fields) -> VerificationEventData:
    return VerificationEventData(outcome=fields.pop("outcome", "restricted"), bot_id=None,
                                 group_id=group_id, chat_id=-100, user_id=user_id, **fields)


def set_aside_metric() -> float:
    return REGISTRY.get_sample_value("nezuko_records_set_aside_total", {"buffer": "events"}) or 0


def test_events_recorded_during_an_outage_are_written_when_it_ends(tmp_path):
    group = make_group()
    recorder = EventRecorder(max_buffered=50, spool=Spool(tmp_path, "events"))
    with database_away():
        for user_id in range(125):
            recorder.record(event(user_id, group.pk))
        # Flushes during the outage write nothing and lose nothing.
        assert recorder.flush() == 0
        assert recorder.flush() == 0
        in_memory, on_disk = len(recorder), recorder.spooled
    written = recorder.flush()
    stored = VerificationEvent.objects.filter(group=group).count()
    print(f"\nevents: recorded=125 in memory={in_memory} on disk={on_disk} "
          f"written after recovery={written} stored={stored} dropped={recorder.dropped}")
    # It should hold 50 in memory and the rest on disk, then write all 125.
    assert (in_memory, on_disk) == (50, 75)
    assert (written, stored, recorder.dropped) == (125, 125, 0)
    assert recorder.spooled == 0
    assert connection.is_usable()


def test_at_shutdown_with_the_database_away_events_move_to_disk_for_the_next_start(tmp_path):
    recorder = EventRecorder(spool=Spool(tmp_path, "events"))
    for user_id in range(30):
        recorder.record(event(user_id, detail="before the restart"))
    with database_away():
        recorder.close()
    assert (len(recorder), recorder.spooled) == (0, 30)
    recorder.close_spool()

    restarted = EventRecorder(spool=Spool(tmp_path, "events"))
    # The next start writes them with its first flush.
    assert restarted.flush() == 30
    assert VerificationEvent.objects.filter(detail="before the restart").count() == 30


def test_a_row_that_can_never_be_stored_is_set_aside_and_the_others_are_written(tmp_path):
    group = make_group()
    gone = make_group()
    gone_pk = gone.pk
    gone.delete()
    recorder = EventRecorder(spool=Spool(tmp_path, "events"))
    before = set_aside_metric()
    for user_id in range(40):
        # One event names a group deleted since: its row breaks a constraint.
        recorder.record(event(user_id, gone_pk if user_id == 17 else group.pk))
    poison = 1
    if connection.vendor == "postgresql":
        # PostgreSQL refuses NUL in any text column.
        recorder.record(event(40, group.pk, outcome="restricted\x00"))
        poison += 1
    written = recorder.flush()
    print(f"\nevents: written={written} set aside={recorder.set_aside}")
    # It should write the 39 good rows and set the poison aside once, counted.
    assert written == 39
    assert recorder.set_aside == poison
    assert set_aside_metric() - before == poison
    assert len(recorder) == 0
    # A second flush has nothing left to retry.
    assert recorder.flush() == 0


def test_a_spooled_row_that_can_never_be_stored_does_not_block_the_spool(tmp_path):
    group = make_group()
    spool = Spool(tmp_path, "events")
    recorder = EventRecorder(max_buffered=1, spool=spool)
    with database_away():
        for user_id in range(10):
            recorder.record(event(user_id, group.pk if user_id != 4 else group.pk + 1000))
    assert recorder.spooled == 9
    assert recorder.flush() == 9
    assert recorder.set_aside == 1
    assert recorder.spooled == 0


def test_names_with_characters_the_database_refuses_are_cleaned(tmp_path):
    recorder = EventRecorder(spool=Spool(tmp_path, "events"))
    recorder.record(event(1, user_name="Ca\x00rol \ud83d"))
    assert recorder.flush() == 1
    assert VerificationEvent.objects.get(user_id=1).user_name == "Carol "
