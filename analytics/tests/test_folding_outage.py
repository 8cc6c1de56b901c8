"""Rollups through a database outage, a restart, and rows that can never be stored."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from prometheus_client import REGISTRY

from analytics.folding import RollupBuffer
from analytics.models import ApiCallRollup, DecisionRollup, Rollup
from analytics.tests.factory import event, make_group
from bots.spool import Spool
from groups.tests.outage import database_away

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 3, 14, 9, 26, 30, tzinfo=UTC)


def test_figures_folded_during_an_outage_are_written_once_when_it_ends(tmp_path):
    group = make_group()
    buffer = RollupBuffer(max_pending=10, spool=Spool(tmp_path, "rollups"))
    with database_away():
        for minute in range(10):
            for _ in range(3):
                buffer.fold(event(group, created_at=T0 + timedelta(minutes=minute)))
        buffer.record_api_call(group.bot_id, "restrictChatMember", "ok", 10.0, at=T0)
        # Flushes during the outage keep everything (memory first, then disk).
        assert buffer.flush() == 0
        assert buffer.flush() == 0
        in_memory, on_disk = buffer.pending, buffer.spool.pending
    written = buffer.flush()
    minutes = DecisionRollup.objects.filter(group=group)
    print(f"\nrollups: keys in memory={in_memory} records on disk={on_disk} "
          f"rows written after recovery={written} dropped={buffer.dropped}")
    # It should count every event exactly once.
    assert on_disk > 0
    assert minutes.count() == 10
    assert sum(minutes.values_list("count", flat=True)) == 30
    assert Rollup.objects.get(span="h", group_id=group.pk).count == 30
    assert ApiCallRollup.objects.get(method="restrictChatMember").count == 1
    assert (buffer.pending, buffer.spool.pending, buffer.dropped) == (0, 0, 0)
    assert connection.is_usable()


def test_at_shutdown_with_the_database_away_figures_wait_on_disk_for_the_next_start(tmp_path):
    group = make_group()
    buffer = RollupBuffer(spool=Spool(tmp_path, "rollups"))
    for _ in range(4):
        buffer.fold(event(group, created_at=T0))
    with database_away():
        buffer.close()
    assert buffer.pending == 0
    buffer.close_spool()

    restarted = RollupBuffer(spool=Spool(tmp_path, "rollups"))
    assert restarted.flush() > 0
    assert DecisionRollup.objects.get(group=group).count == 4


@pytest.mark.skipif("connection.vendor != 'postgresql'",
                    reason="SQLite stores an over-long outcome; PostgreSQL refuses it")
def test_a_row_that_can_never_be_stored_is_set_aside_and_the_others_are_written(tmp_path):
    group = make_group()
    buffer = RollupBuffer(spool=Spool(tmp_path, "rollups"))
    before = REGISTRY.get_sample_value("nezuko_records_set_aside_total",
                                       {"buffer": "rollups"}) or 0
    buffer.fold(event(group, created_at=T0))
    buffer.fold(event(group, "x" * 40, created_at=T0))
    buffer.flush()
    # The good outcome's rows are written; the over-long one's are set aside, once each.
    assert DecisionRollup.objects.get(group=group, outcome="restricted").count == 1
    assert buffer.set_aside > 0
    assert (REGISTRY.get_sample_value("nezuko_records_set_aside_total", {"buffer": "rollups"})
            - before) == buffer.set_aside
    assert buffer.flush() == 0
