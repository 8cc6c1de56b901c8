"""Events fold into minute, hour and day rollups in batches."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics.folding import RollupBuffer
from analytics.models import ALL_GROUPS, ApiCallHourly, ApiCallRollup, DecisionRollup, Rollup
from analytics.tests.factory import event, make_group
from bots.spool import Spool

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 14, 9, 26, 30, tzinfo=UTC)


class TestFolding:
    def test_it_folds_a_burst_into_one_row_per_minute_group_and_outcome(self):
        group = make_group()
        buffer = RollupBuffer()
        for i in range(5):
            buffer.fold(event(group, "restricted", created_at=T0 + timedelta(seconds=i),
                              latency_ms=3.0, cache_hit=i % 2 == 0))
        buffer.fold(event(group, "verified", created_at=T0, latency_ms=700.0))

        written = buffer.flush()

        # It should write the minute rows, hour/day rows per group and for all groups,
        # and the group's day total.
        assert written == 2 + 2 * 2 * 2 + 1
        row = DecisionRollup.objects.get(group=group, outcome="restricted")
        assert row.minute == T0.replace(second=0)
        assert (row.count, row.cache_hits, row.cache_misses) == (5, 3, 2)
        assert row.latency_sum_ms == pytest.approx(15.0)
        # 3 ms falls in the "<= 5 ms" bucket (third).
        assert row.latency_buckets[2] == 5
        assert Rollup.objects.get(span="d", group_id=ALL_GROUPS, outcome="verified").count == 1

    def test_it_adds_to_rows_written_by_an_earlier_flush(self):
        group = make_group()
        buffer = RollupBuffer()
        buffer.fold(event(group, created_at=T0, latency_ms=1.0))
        buffer.flush()
        buffer.fold(event(group, created_at=T0 + timedelta(seconds=10), latency_ms=1.0))
        buffer.flush()

        # It should still be one row, now counting two.
        row = DecisionRollup.objects.get(group=group)
        assert row.count == 2
        assert sum(row.latency_buckets) == 2
        assert Rollup.objects.get(span="h", group_id=group.pk).count == 2

    def test_it_writes_nothing_when_nothing_is_buffered(self):
        assert RollupBuffer().flush() == 0

    def test_keys_past_the_bound_overflow_to_disk_and_are_written_with_the_rest(self, tmp_path):
        group = make_group()
        buffer = RollupBuffer(max_pending=6, spool=Spool(tmp_path, "rollups"))
        buffer.fold(event(group, created_at=T0))
        buffer.fold(event(group, created_at=T0 + timedelta(days=1)))

        # The second event needed 6 new keys and none fit in memory: they wait on disk.
        assert buffer.pending == 6
        assert (buffer.spool.pending, buffer.dropped) == (6, 0)
        assert buffer.flush() == 12
        assert DecisionRollup.objects.filter(group=group).count() == 2
        assert buffer.spool.pending == 0

    def test_it_folds_api_calls_per_minute_bot_method_and_outcome(self):
        group = make_group()
        buffer = RollupBuffer()
        for _ in range(3):
            buffer.record_api_call(group.bot_id, "restrictChatMember", "ok", 20.0, at=T0)
        buffer.record_api_call(group.bot_id, "restrictChatMember", "429", 5.0, at=T0)
        buffer.flush()

        ok = ApiCallRollup.objects.get(outcome="ok")
        assert (ok.count, ok.latency_sum_ms, ok.bot_id) == (3, 60.0, group.bot_id)
        assert ApiCallRollup.objects.get(outcome="429").count == 1
        # The hourly rows count the same calls.
        hourly = ApiCallHourly.objects.get(outcome="ok")
        assert (hourly.hour, hourly.count) == (T0.replace(minute=0, second=0), 3)

@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_it_flushes_by_itself_on_the_running_loop():
    from asgiref.sync import sync_to_async

    group = await sync_to_async(make_group)()
    buffer = RollupBuffer()
    buffer.fold(event(group, created_at=T0))
    assert buffer.pending > 0

    # It should have scheduled its own flush on this loop, which writes the rows.
    assert buffer.flush_task is not None
    assert await buffer.flush_task == 6
    assert buffer.pending == 0
    assert await DecisionRollup.objects.filter(group_id=group.pk).acount() == 1



def test_rows_of_a_group_or_bot_deleted_before_the_flush_are_dropped_not_retried():
    doomed, kept = make_group(), make_group()
    buffer = RollupBuffer()
    buffer.fold(event(doomed, created_at=T0))
    buffer.fold(event(kept, created_at=T0))
    buffer.record_api_call(doomed.bot_id, "getChatMember", "ok", 5.0, at=T0)
    doomed.bot.delete()  # the group goes with its bot

    # It should write what still has a home, and not keep the rest for ever.
    assert buffer.flush() > 0
    assert list(DecisionRollup.objects.values_list("group_id", flat=True)) == [kept.pk]
    assert not ApiCallRollup.objects.exists()
    assert buffer.pending == 0
