"""The read side: every chart and figure is one of these QuerySet methods.

Tenancy is applied first and always: `scope(group_ids)` with the groups the
dashboard's gate allows, or `None` for staff (everything).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import Count, IntegerField, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, ExtractHour

from analytics import histogram

# `Rollup.group_id` of the rows that count every group (staff-wide figures).
ALL_GROUPS = 0
# `Rollup.span` of the per-group, per-day rows that count all outcomes together.
SPAN_DAY_TOTAL = "t"
TOTAL_OUTCOME = "*"


def _histogram_sums() -> dict[str, Sum]:
    """One SUM per histogram bucket, computed by the database (JSON array items)."""
    return {
        f"b{i}": Coalesce(Sum(Cast(KT(f"latency_buckets__{i}"), IntegerField())), 0)
        for i in range(len(histogram.LATENCY_BUCKETS_MS))
    }


def _counts(row: dict[str, Any]) -> list[int]:
    return [row[f"b{i}"] or 0 for i in range(len(histogram.LATENCY_BUCKETS_MS))]


class RollupQuerySet(models.QuerySet):
    def scope(self, group_ids: list[int] | None) -> RollupQuerySet:
        """Rows for these groups; `None` means every group (the pre-summed rows)."""
        if group_ids is None:
            return self.filter(group_id=ALL_GROUPS)
        return self.filter(group_id__in=[g for g in group_ids if g != ALL_GROUPS])

    def window(self, span: str, start: datetime, end: datetime) -> RollupQuerySet:
        return self.filter(span=span, bucket__gte=start, bucket__lt=end)

    def outcome_series(self) -> list[dict[str, Any]]:
        """[{bucket, outcome, total}] ordered by time."""
        return list(
            self.values("bucket", "outcome").annotate(total=Sum("count")).order_by("bucket")
        )

    def cache_series(self) -> list[dict[str, Any]]:
        """[{bucket, hits, misses}] ordered by time."""
        return list(
            self.values("bucket")
            .annotate(hits=Sum("cache_hits"), misses=Sum("cache_misses"))
            .order_by("bucket")
        )

    def latency_series(self) -> list[dict[str, Any]]:
        """[{bucket, p50, p95}] from the merged histograms of each bucket."""
        rows = self.values("bucket").annotate(**_histogram_sums()).order_by("bucket")
        return [
            {
                "bucket": row["bucket"],
                "p50": histogram.percentile(_counts(row), 0.5),
                "p95": histogram.percentile(_counts(row), 0.95),
            }
            for row in rows
        ]

    def latency_distribution(self) -> list[int]:
        """Counts per `histogram.LATENCY_BUCKETS_MS` bucket over the whole window."""
        return _counts(self.order_by().aggregate(**_histogram_sums()))

    def hourly_activity(self) -> list[int]:
        """24 totals, index = hour of day (UTC). Reads hour rows."""
        totals = [0] * 24
        rows = self.annotate(hour=ExtractHour("bucket")).values("hour").annotate(
            total=Sum("count")
        )
        for row in rows.order_by():
            totals[row["hour"]] += row["total"] or 0
        return totals

    def top_groups(
        self, start: datetime, end: datetime, limit: int = 10
    ) -> list[dict[str, Any]]:
        """[{group_id, total, restricted}] busiest first over whole days.

        Ranks on the per-day totals rows (span "t", one per group and day, all
        outcomes together): ten times fewer rows than the per-outcome day rows,
        which is what keeps this under 50 ms with a thousand busy groups.
        """
        days = self.filter(bucket__gte=start, bucket__lt=end).exclude(group_id=ALL_GROUPS)
        top = list(
            days.filter(span=SPAN_DAY_TOTAL)
            .values("group_id")
            .annotate(total=Sum("count"))
            .order_by("-total", "group_id")[:limit]
        )
        restricted = dict(
            days.filter(span="d", outcome="restricted", group_id__in=[t["group_id"] for t in top])
            .values("group_id")
            .annotate(n=Sum("count"))
            .values_list("group_id", "n")
        )
        return [t | {"restricted": restricted.get(t["group_id"], 0)} for t in top]

    def totals(self) -> dict[str, int]:
        """{outcome: count} plus cache figures under "_cache_hits"/"_cache_misses"."""
        result: dict[str, int] = {}
        hits = misses = 0
        for row in self.values("outcome").annotate(
            total=Sum("count"), hits=Sum("cache_hits"), misses=Sum("cache_misses")
        ).order_by():
            result[row["outcome"]] = row["total"] or 0
            hits += row["hits"] or 0
            misses += row["misses"] or 0
        result["_cache_hits"] = hits
        result["_cache_misses"] = misses
        return result


class DecisionRollupQuerySet(models.QuerySet):
    def scope(self, group_ids: list[int] | None) -> DecisionRollupQuerySet:
        if group_ids is None:
            return self
        return self.filter(group_id__in=group_ids)

    def since(self, start: datetime) -> DecisionRollupQuerySet:
        return self.filter(minute__gte=start)

    def per_minute(self) -> list[dict[str, Any]]:
        """[{minute, outcome, total}] ordered by time: the overview's last hour."""
        return list(
            self.values("minute", "outcome").annotate(total=Sum("count")).order_by("minute")
        )


class ApiCallRollupQuerySet(models.QuerySet):
    def scope(self, bot_ids: list[int] | None) -> ApiCallRollupQuerySet:
        if bot_ids is None:
            return self
        return self.filter(bot_id__in=bot_ids)

    def window(self, start: datetime, end: datetime) -> ApiCallRollupQuerySet:
        """Works on both the minute rows and the hourly rows."""
        field = "hour" if self.model._meta.model_name == "apicallhourly" else "minute"
        return self.filter(**{f"{field}__gte": start, f"{field}__lt": end})

    def by_method_outcome(self) -> list[dict[str, Any]]:
        """[{method, outcome, total, latency_avg_ms}] most called first."""
        rows = (
            self.values("method", "outcome")
            .annotate(total=Sum("count"), latency=Sum("latency_sum_ms"))
            .order_by("-total", "method", "outcome")
        )
        return [
            {
                "method": row["method"],
                "outcome": row["outcome"],
                "total": row["total"] or 0,
                "latency_avg_ms": (row["latency"] or 0) / row["total"] if row["total"] else None,
            }
            for row in rows
        ]

    def success_by_bot(self) -> dict[int, tuple[int, int]]:
        """{bot_id: (ok, total)}."""
        rows = self.values("bot_id").annotate(
            total=Sum("count"), ok=Sum("count", filter=Q(outcome="ok")), n=Count("id")
        ).order_by()
        return {row["bot_id"]: (row["ok"] or 0, row["total"] or 0) for row in rows}
