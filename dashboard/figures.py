"""The numbers and chart data on the overview and analytics pages.

Everything is scoped through the gate first; the heavy lifting is in the
analytics QuerySet methods, which read rollups only.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from analytics import histogram
from analytics.models import ApiCallHourly, DecisionRollup, Rollup
from bots.models import BotStatus
from dashboard import access, charts
from groups.models import GroupMember, ProtectedGroup

SUCCESS_OUTCOMES = ("verified", "unmuted", "join_approved")
DECISION_OUTCOMES = ("verified", "restricted", "unmuted", "kicked", "deleted",
                     "join_approved", "join_declined", "error")


def rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def today_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    start = (now or timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def overview(user) -> dict[str, Any]:
    """The overview's figures; also sent out-of-band with live feed updates."""
    groups = access.visible_groups(user)
    group_ids = access.visible_group_ids(user)
    totals = Rollup.objects.scope(group_ids).window("d", *today_window()).totals()
    decided = sum(v for k, v in totals.items() if not k.startswith("_"))
    hits, misses = totals["_cache_hits"], totals["_cache_misses"]
    bots = access.visible_bots(user)
    fresh_after = timezone.now() - timedelta(seconds=90)
    return {
        "groups_protected": groups.enabled().count(),
        "groups_attention": groups.needing_attention().count(),
        "channels": access.visible_channels(user).count(),
        "restricted_now": GroupMember.objects.filter(
            group__in=groups, restricted_by_nezuko=True
        ).count(),
        "verified_today": totals.get("verified", 0) + totals.get("join_approved", 0),
        "restricted_today": totals.get("restricted", 0),
        "unmuted_today": totals.get("unmuted", 0),
        "decisions_today": decided,
        "success_rate": rate(decided - totals.get("error", 0), decided),
        "cache_hit_rate": rate(hits, hits + misses),
        "bots_total": bots.count(),
        "bots_up": BotStatus.objects.filter(
            bot__in=bots, state=BotStatus.State.RUNNING, heartbeat_at__gte=fresh_after
        ).count(),
    }


def bots_down(user) -> list:
    """Active bots the user relies on whose heartbeat is missing or stale."""
    bots = access.visible_bots(user).filter(is_active=True).select_related("status")
    return [
        bot for bot in bots
        if getattr(bot, "status", None) is None
        or bot.status.state != BotStatus.State.RUNNING
        or not bot.status.is_fresh()
    ][:5]


def last_hour(user) -> dict:
    """Decisions per minute over the last hour, for the overview sparkline."""
    now = timezone.now().replace(second=0, microsecond=0)
    start = now - timedelta(minutes=59)
    rows = DecisionRollup.objects.scope(access.visible_group_ids(user)).since(start).per_minute()
    minutes = [start + timedelta(minutes=i) for i in range(60)]
    index = {m: i for i, m in enumerate(minutes)}
    present = {row["outcome"] for row in rows}
    stacks = {o: [0] * len(minutes) for o in DECISION_OUTCOMES if o in present}
    for row in rows:
        if row["minute"] in index and row["outcome"] in stacks:
            stacks[row["outcome"]][index[row["minute"]]] += row["total"] or 0
    return charts.stacked_bars([f"{m:%H:%M}" for m in minutes], stacks)


@dataclasses.dataclass(frozen=True)
class Window:
    span: str  # "h" or "d"
    start: datetime
    end: datetime

    @classmethod
    def of(cls, period_days: int, granularity: str, now: datetime | None = None) -> Window:
        now = now or timezone.now()
        if granularity == "day":
            end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
            return cls("d", end - timedelta(days=period_days), end)
        end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return cls("h", end - timedelta(days=period_days), end)

    @property
    def step(self) -> timedelta:
        return timedelta(days=1) if self.span == "d" else timedelta(hours=1)

    def buckets(self) -> list[datetime]:
        out, moment = [], self.start
        while moment < self.end:
            out.append(moment)
            moment += self.step
        return out

    def label(self, moment: datetime) -> str:
        return f"{moment:%b %d}" if self.span == "d" else f"{moment:%d %H:00}"


def analytics(user, window: Window, group_ids: list[int] | None) -> dict[str, Any]:
    """Every chart on the analytics page; `group_ids` already passed the gate."""
    rollups = Rollup.objects.scope(group_ids)
    in_window = rollups.window(window.span, window.start, window.end)
    buckets = window.buckets()
    labels = [window.label(b) for b in buckets]

    outcome_rows = in_window.outcome_series()
    outcomes = [o for o in DECISION_OUTCOMES if any(r["outcome"] == o for r in outcome_rows)]
    index = {b: i for i, b in enumerate(buckets)}
    stacks = {o: [0] * len(buckets) for o in outcomes}
    for row in outcome_rows:
        if row["bucket"] in index:
            stacks[row["outcome"]][index[row["bucket"]]] += row["total"] or 0

    cache = {r["bucket"]: r for r in in_window.cache_series()}
    cache_rate = [
        rate(cache[b]["hits"] or 0, (cache[b]["hits"] or 0) + (cache[b]["misses"] or 0))
        if b in cache else None
        for b in buckets
    ]
    latency = {r["bucket"]: r for r in in_window.latency_series()}
    distribution = in_window.latency_distribution()
    hourly = rollups.window("h", window.start, window.end).hourly_activity()
    # Staff scope reads the all-groups rows; ranking groups needs the per-group rows.
    per_group = Rollup.objects.all() if group_ids is None else rollups
    top = top_groups(per_group, _day_floor(window.start), window.end)

    return {
        "outcomes_chart": charts.stacked_bars(labels, stacks),
        "cache_chart": charts.lines(labels, {"cache hit %": cache_rate}, top=100),
        "latency_chart": charts.lines(labels, {
            "p50 ms": [(latency.get(b) or {}).get("p50") for b in buckets],
            "p95 ms": [(latency.get(b) or {}).get("p95") for b in buckets],
        }),
        "latency_distribution": charts.simple_bars(
            [_bucket_label(bound) for bound in histogram.LATENCY_BUCKETS_MS], distribution
        ),
        "latency_p50": histogram.percentile(distribution, 0.5),
        "latency_p95": histogram.percentile(distribution, 0.95),
        "hourly_chart": charts.simple_bars([f"{h:02d}" for h in range(24)], hourly, "#0ea5e9"),
        "top_groups": top,
        "api_calls": api_calls(user, window),
        "groups_enabled": groups_enabled(user),
        "bot_health": bot_health(user, window),
        "totals": in_window.totals(),
    }


def _day_floor(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _bucket_label(bound: float) -> str:
    return "more" if bound == float("inf") else f"≤{bound:g}"


def top_groups(rows, start: datetime, end: datetime, limit: int = 10) -> list[dict[str, Any]]:
    top = rows.top_groups(start, end, limit)
    titles = dict(ProtectedGroup.objects.filter(pk__in=[t["group_id"] for t in top])
                  .values_list("pk", "title"))
    peak = max((t["total"] or 0 for t in top), default=0) or 1
    return [
        {"group_id": t["group_id"], "title": titles.get(t["group_id"], f"#{t['group_id']}"),
         "total": t["total"] or 0, "restricted": t["restricted"] or 0,
         "width": round(100 * (t["total"] or 0) / peak, 1)}
        for t in top
    ]


def api_calls(user, window: Window) -> list[dict[str, Any]]:
    rows = ApiCallHourly.objects.scope(access.owned_bot_ids(user)).window(
        window.start, window.end
    ).by_method_outcome()
    peak = max((r["total"] for r in rows), default=0) or 1
    return [r | {"width": round(100 * r["total"] / peak, 1)} for r in rows[:20]]


def groups_enabled(user) -> dict[str, int]:
    counts = access.visible_groups(user).aggregate(
        on=Count("pk", filter=Q(enabled=True)), off=Count("pk", filter=Q(enabled=False))
    )
    counts = {"enabled": counts["on"], "disabled": counts["off"]}
    total = (counts["enabled"] or 0) + (counts["disabled"] or 0)
    return counts | {"total": total,
                     "enabled_pct": round(100 * (counts["enabled"] or 0) / total) if total else 0}


def bot_health(user, window: Window) -> list[dict[str, Any]]:
    """Score 0-100: 70 points for the share of successful Telegram calls in the
    window, 30 for a fresh heartbeat. A bot with no calls, or one the user did
    not add (its calls serve other owners too), gets the full 70."""
    bots = list(access.visible_bots(user).select_related("status"))
    owned = access.owned_bot_ids(user)
    mine = [b.pk for b in bots if owned is None or b.pk in owned]
    success = ApiCallHourly.objects.scope(mine).window(
        window.start, window.end
    ).success_by_bot()
    out = []
    for bot in bots:
        ok, total = success.get(bot.pk, (0, 0))
        status = getattr(bot, "status", None)
        fresh = status is not None and status.state == "running" and status.is_fresh()
        score = round(70 * (ok / total if total else 1) + (30 if fresh else 0))
        out.append({"bot": bot, "score": score, "calls": total, "ok_rate": rate(ok, total),
                    "fresh": fresh, "status": status})
    return out
