"""/analytics: the same series as the charts, as data."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema

from analytics import histogram
from dashboard import access, figures
from dashboard.api.schemas import AnalyticsOut

router = Router(tags=["analytics"])


class AnalyticsQuery(Schema):
    period: Literal["24h", "7d", "30d"] = "7d"
    granularity: Literal["hour", "day"] = "hour"
    group: int | None = None


@router.get("/analytics", response=AnalyticsOut)
def get_analytics(request: HttpRequest, query: Query[AnalyticsQuery]):
    from analytics.models import Rollup
    from dashboard.forms import AnalyticsForm

    group_ids = access.visible_group_ids(request.auth)
    if query.group is not None:
        group_ids = [access.get_group_for(request.auth, query.group).pk]
    window = figures.Window.of(AnalyticsForm.PERIODS[query.period], query.granularity)
    rows = Rollup.objects.scope(group_ids).window(window.span, window.start, window.end)
    by_outcome: dict[str, list[dict]] = {}
    for row in rows.outcome_series():
        by_outcome.setdefault(row["outcome"], []).append(
            {"bucket": row["bucket"], "value": row["total"]})
    cache = [
        {"bucket": r["bucket"],
         "value": figures.rate(r["hits"] or 0, (r["hits"] or 0) + (r["misses"] or 0))}
        for r in rows.cache_series()
    ]
    latency = rows.latency_series()
    distribution = rows.latency_distribution()
    per_group = Rollup.objects.all() if group_ids is None else Rollup.objects.scope(group_ids)
    top = figures.top_groups(per_group, window.start.replace(hour=0), window.end)
    return {
        "span": query.granularity, "start": window.start, "end": window.end,
        "outcomes": [{"name": k, "points": v} for k, v in by_outcome.items()],
        "cache_hit_rate": cache,
        "latency_p50_ms": [{"bucket": p["bucket"], "value": p["p50"]} for p in latency],
        "latency_p95_ms": [{"bucket": p["bucket"], "value": p["p95"]} for p in latency],
        "latency_distribution": [
            {"le_ms": None if b == float("inf") else b, "count": c}
            for b, c in zip(histogram.LATENCY_BUCKETS_MS, distribution, strict=True)
        ],
        "hourly_activity": Rollup.objects.scope(group_ids).window(
            "h", window.start, window.end).hourly_activity(),
        "top_groups": [{k: v for k, v in t.items() if k != "width"} for t in top],
        "api_calls": [{k: v for k, v in c.items() if k != "width"}
                      for c in figures.api_calls(request.auth, window)],
        "totals": rows.totals(),
    }
