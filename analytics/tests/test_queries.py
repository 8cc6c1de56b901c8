"""The queries behind the charts read the rollups, scoped to the allowed groups."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics import histogram
from analytics.folding import RollupBuffer
from analytics.models import ApiCallRollup, DecisionRollup, Rollup
from analytics.tests.factory import event, make_group

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
DAY = (T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=1))


@pytest.fixture
def two_groups():
    mine, theirs = make_group(title="Mine"), make_group(title="Theirs")
    buffer = RollupBuffer()
    for minute in range(3):
        buffer.fold(event(mine, "restricted", created_at=T0 + timedelta(minutes=minute),
                          latency_ms=4, cache_hit=True))
    buffer.fold(event(mine, "unmuted", created_at=T0 + timedelta(hours=2), latency_ms=300,
                      cache_hit=False))
    for _ in range(10):
        buffer.fold(event(theirs, "verified", created_at=T0, latency_ms=40))
    buffer.record_api_call(mine.bot_id, "getChatMember", "ok", 10, at=T0)
    buffer.record_api_call(theirs.bot_id, "getChatMember", "ok", 10, at=T0)
    buffer.flush()
    return mine, theirs


class TestRollupQueries:
    def test_outcome_series_counts_only_the_scoped_groups(self, two_groups):
        mine, _ = two_groups
        series = Rollup.objects.scope([mine.pk]).window("h", *DAY).outcome_series()

        # It should show my three restrictions at 09:00 and one unmute at 11:00.
        assert [(p["bucket"].hour, p["outcome"], p["total"]) for p in series] == [
            (9, "restricted", 3), (11, "unmuted", 1),
        ]

    def test_staff_scope_reads_the_all_groups_rows(self, two_groups):
        totals = Rollup.objects.scope(None).window("d", *DAY).totals()

        # It should count both groups, each event once.
        assert totals["restricted"] == 3
        assert totals["verified"] == 10
        assert totals["_cache_hits"] == 3 and totals["_cache_misses"] == 1

    def test_latency_percentiles_come_from_the_histograms(self, two_groups):
        mine, _ = two_groups
        series = Rollup.objects.scope([mine.pk]).window("h", *DAY).latency_series()
        assert [(p["bucket"].hour, p["p50"], p["p95"]) for p in series] == [
            (9, 5, 5), (11, 500, 500),
        ]
        distribution = Rollup.objects.scope(None).window("d", *DAY).latency_distribution()
        assert distribution[histogram.bucket_index(40)] == 10

    def test_hourly_activity_and_top_groups(self, two_groups):
        mine, theirs = two_groups
        hours = Rollup.objects.scope([mine.pk, theirs.pk]).window("h", *DAY).hourly_activity()
        assert hours[9] == 13 and hours[11] == 1 and sum(hours) == 14

        # Staff scope holds only the all-groups rows; top groups reads per-group rows.
        assert Rollup.objects.scope(None).top_groups(*DAY) == []
        assert Rollup.objects.top_groups(*DAY) == [
            {"group_id": theirs.pk, "total": 10, "restricted": 0},
            {"group_id": mine.pk, "total": 4, "restricted": 3},
        ]
        assert Rollup.objects.scope([mine.pk]).top_groups(*DAY, limit=1) == [
            {"group_id": mine.pk, "total": 4, "restricted": 3},
        ]

    def test_per_minute_and_api_calls(self, two_groups):
        mine, _ = two_groups
        minutes = DecisionRollup.objects.scope([mine.pk]).since(T0).per_minute()
        assert [(m["outcome"], m["total"]) for m in minutes] == [
            ("restricted", 1), ("restricted", 1), ("restricted", 1), ("unmuted", 1),
        ]

        calls = ApiCallRollup.objects.scope([mine.bot_id]).window(*DAY).by_method_outcome()
        assert calls == [{"method": "getChatMember", "outcome": "ok", "total": 1,
                          "latency_avg_ms": 10.0}]
        assert ApiCallRollup.objects.success_by_bot()[mine.bot_id] == (1, 1)


class TestHistogram:
    def test_percentile_of_an_empty_histogram_is_none(self):
        assert histogram.percentile(histogram.empty(), 0.95) is None

    def test_the_open_bucket_reports_the_last_finite_bound(self):
        counts = histogram.empty()
        counts[-1] = 3
        assert histogram.percentile(counts, 0.5) == 5000
