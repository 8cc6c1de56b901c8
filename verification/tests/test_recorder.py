"""The event recorder: batched writes, publish at once, survives a database blink."""

import dataclasses

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from bots.models import ForgottenPerson
from bots.spool import Spool
from verification.events import VerificationEventData
from verification.models import VerificationEvent
from verification.recorder import EventRecorder

pytestmark = pytest.mark.django_db


def event(user_id: int = 1) -> VerificationEventData:
    return VerificationEventData(outcome="restricted", bot_id=None, group_id=None,
                                 chat_id=-100, user_id=user_id, missing_channel_ids=(-1001,))


def test_it_publishes_at_once_and_writes_in_one_batch(django_assert_num_queries):
    seen = []
    recorder = EventRecorder(subscribers=[seen.append])
    for i in range(50):
        recorder.record(event(i))
    # Subscribers hear of every event before anything is written.
    assert len(seen) == 50
    assert VerificationEvent.objects.count() == 0
    with django_assert_num_queries(1):
        assert recorder.flush() == 50
    assert VerificationEvent.objects.filter(missing_channel_ids=[-1001]).count() == 50


def test_it_keeps_events_while_the_database_is_away_and_writes_them_later(monkeypatch):
    recorder = EventRecorder()
    recorder.record(event(1))

    def broken(*args, **kwargs):
        raise ConnectionError("database blinked")

    with monkeypatch.context() as m:
        m.setattr(VerificationEvent.objects, "bulk_create", broken)
        # Nothing written, nothing lost.
        assert recorder.flush() == 0
        assert len(recorder) == 1
    recorder.record(event(2))
    assert recorder.flush() == 2
    assert sorted(VerificationEvent.objects.values_list("user_id", flat=True)) == [1, 2]
    assert connection.is_usable()


def test_a_full_buffer_overflows_to_disk_instead_of_dropping(tmp_path):
    recorder = EventRecorder(max_buffered=3, spool=Spool(tmp_path, "events"))
    for i in range(5):
        recorder.record(event(i))
    # It should keep three in memory and two on disk, dropping none.
    assert (len(recorder), recorder.spooled, recorder.dropped) == (3, 2, 0)
    assert recorder.flush() == 5
    assert sorted(VerificationEvent.objects.values_list("user_id", flat=True)) == [0, 1, 2, 3, 4]
    assert recorder.spooled == 0


def test_a_spooled_name_is_not_written_back_after_its_person_asked_to_be_forgotten(tmp_path):
    """Spooled through an outage by a process that stopped, written at its next start:
    meanwhile another process answered the person's /forget."""
    recorder = EventRecorder(max_buffered=0, spool=Spool(tmp_path, "events"))
    recorder.record(dataclasses.replace(event(5), user_name="Carol"))
    recorder.record(dataclasses.replace(event(6), user_name="Dan"))
    assert recorder.spooled == 2
    ForgottenPerson.objects.create(telegram_id=5, forgotten_at=timezone.now())
    recorder.record(dataclasses.replace(event(5), user_name="Carol again"))  # wrote again
    assert recorder.flush() == 3
    names = sorted(VerificationEvent.objects.values_list("user_id", "user_name"))
    assert names == [(5, ""), (5, "Carol again"), (6, "Dan")]


def test_only_a_full_disk_drops_events_and_it_counts_them(tmp_path):
    before = REGISTRY.get_sample_value("nezuko_events_dropped_total") or 0
    recorder = EventRecorder(max_buffered=3, spool=Spool(tmp_path, "events", max_records=5))
    for i in range(10):
        recorder.record(event(i))
    assert (len(recorder), recorder.spooled, recorder.dropped) == (3, 5, 2)
    assert REGISTRY.get_sample_value("nezuko_events_dropped_total") - before == 2
    assert recorder.flush() == 8
