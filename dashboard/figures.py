"""The numbers and chart data on the overview and analytics pages.

Everything is scoped through the gate first; the heavy lifting is in the
analytics QuerySet methods, which read rollups only.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Q
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from analytics import histogram
from analytics.models import ApiCallHourly, DecisionRollup, Rollup
from analytics.querysets import RollupQuerySet
from bots.models import BotInstance, BotStatus
from dashboard import access, charts, wording
from groups.models import EnforcedChannel, GroupMember, ProtectedGroup
from verification.models import Outcome

SUCCESS_OUTCOMES = ("verified", "unmuted", "join_approved")
DECISION_OUTCOMES = ("verified", "restricted", "unmuted", "kicked", "deleted",
                     "join_approved", "join_declined", "error")
# Unmute reasons that mean the person joined the channel because Nezuko asked.
JOIN_REASONS = ("channel_join", "button")
# The overview's growth figures cover this many days, today included.
GROWTH_DAYS = 7


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
    week_start = today_window()[1] - timedelta(days=GROWTH_DAYS)
    week = Rollup.objects.scope(group_ids).window("d", week_start, today_window()[1]).totals()
    protected = groups.enabled()
    return {
        "groups_protected": protected.count(),
        "groups_attention": groups.needing_attention().count(),
        # Channels the protected groups require, so both figures describe one thing.
        "channels": EnforcedChannel.objects.filter(groups__in=protected).distinct().count(),
        "restricted_now": GroupMember.objects.filter(
            group__in=groups, restricted_by_nezuko=True
        ).count(),
        "growth_days": GROWTH_DAYS,
        "members_verified": sum(week.get(o, 0) for o in SUCCESS_OUTCOMES),
        "joins_brought": joins_brought(user, week_start),
        # The same outcomes as members_verified, so "today" is a part of "7 days".
        "verified_today": sum(totals.get(o, 0) for o in SUCCESS_OUTCOMES),
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


def joins_brought(user, since: datetime) -> int:
    """People restricted for missing the channel who then joined it (and were unmuted)."""
    return access.visible_events(user).filter(
        created_at__gte=since, outcome=Outcome.UNMUTED, detail__in=JOIN_REASONS
    ).count()


def bots_down(user) -> list:
    """Active bots the user relies on that are not running well, with their state."""
    bots = access.visible_bots(user).filter(is_active=True).select_related("status")
    return [bot for bot in bots if not bot_state(bot)["ok"]][:5]


def bot_state(bot: BotInstance) -> dict[str, Any]:
    """What the overview's "Needs attention" and the bots page both say about a bot.

    A bot that failed and is being restarted flips between "failed" and
    "starting"; it reads "restarting after a failure" until it runs again, so
    two pages loaded a second apart do not contradict each other.
    """
    status = getattr(bot, "status", None)
    if not bot.is_active:
        return {"key": "disabled", "label": pgettext("bot state", "disabled"), "ok": True}
    if status is None:
        return {"key": "new", "label": pgettext("bot state", "not started yet"), "ok": False}
    fresh = status.is_fresh()
    if status.state == BotStatus.State.RUNNING:
        if fresh:
            return {"key": "running", "label": pgettext("bot state", "running"), "ok": True}
        return {"key": "stale", "label": pgettext("bot state", "not responding"), "ok": False}
    failed_lately = status.last_error_at is not None and (
        status.started_at is None or status.last_error_at >= status.started_at
        - timedelta(minutes=5)
    )
    if status.state == BotStatus.State.STARTING and failed_lately:
        return {"key": "failed", "label": pgettext("bot state", "restarting after a failure"),
                "ok": False}
    labels = {"starting": pgettext("bot state", "starting"),
              "stopped": pgettext("bot state", "stopped"),
              "failed": pgettext("bot state", "failed")}
    return {"key": status.state, "label": labels.get(status.state, status.state), "ok": False}


def last_hour(user) -> dict:
    """Decisions per minute over the last hour, for the overview chart."""
    window = Window.of(PERIODS["1h"], "minute")
    return outcome_chart(window, access.visible_group_ids(user))


# Analytics periods: their length in days and the finest step that reads well.
PERIODS = {"1h": 1 / 24, "24h": 1, "7d": 7, "30d": 30}
PERIOD_STEPS = {"1h": "minute", "24h": "hour", "7d": "hour", "30d": "day"}


def default_period(group_ids: list[int] | None, now: datetime | None = None) -> str:
    """The shortest period that holds all the data there is: a demo's first
    hour fills the chart instead of being a sliver at the edge of a week."""
    scope = Rollup.objects.scope(group_ids).filter(span="h")
    first = scope.order_by("bucket").values_list("bucket", flat=True).first()
    if first is None:
        return "24h"
    age = (now or timezone.now()) - first
    for period in ("1h", "24h", "7d"):
        if age < timedelta(days=PERIODS[period]):
            return period
    return "30d"


@dataclasses.dataclass(frozen=True)
class Window:
    span: str  # "m" (DecisionRollup minutes), "h" or "d" (Rollup)
    start: datetime
    end: datetime

    @classmethod
    def of(cls, period_days: float, granularity: str, now: datetime | None = None) -> Window:
        now = now or timezone.now()
        length = timedelta(days=period_days)
        if granularity == "minute":
            end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            return cls("m", end - length, end)
        if granularity == "day":
            end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
            return cls("d", end - length, end)
        end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return cls("h", end - length, end)

    @property
    def step(self) -> timedelta:
        return {"m": timedelta(minutes=1), "h": timedelta(hours=1)}.get(self.span,
                                                                          timedelta(days=1))

    def buckets(self) -> list[datetime]:
        out, moment = [], self.start
        while moment < self.end:
            out.append(moment)
            moment += self.step
        return out

    def label(self, moment: datetime) -> str:
        # Django's date format, not strftime: month and day names in the page's language.
        if self.span == "m":
            return dateformat.format(moment, "H:i")
        if self.span == "d":
            return dateformat.format(moment, "M j")
        if self.end - self.start <= timedelta(days=1):
            return dateformat.format(moment, "H:00")
        return dateformat.format(moment, "D H:00")

    def rows(self, group_ids: list[int] | None) -> RollupQuerySet:
        """The window's rollup rows, each with a `bucket`, whatever the step."""
        if self.span != "m":
            return Rollup.objects.scope(group_ids).window(self.span, self.start, self.end)
        minutes = DecisionRollup.objects.scope(group_ids).filter(
            minute__gte=self.start, minute__lt=self.end
        ).annotate(bucket=F("minute"))
        # The minute rows carry the same figures as Rollup: read them with its methods.
        return RollupQuerySet(model=DecisionRollup, query=minutes.query)


def outcome_chart(window: Window, group_ids: list[int] | None) -> dict:
    buckets = window.buckets()
    outcome_rows = window.rows(group_ids).outcome_series()
    outcomes = [o for o in DECISION_OUTCOMES if any(r["outcome"] == o for r in outcome_rows)]
    index = {b: i for i, b in enumerate(buckets)}
    stacks = {o: [0] * len(buckets) for o in outcomes}
    for row in outcome_rows:
        if row["bucket"] in index and row["outcome"] in stacks:
            stacks[row["outcome"]][index[row["bucket"]]] += row["total"] or 0
    return charts.stacked_bars([window.label(b) for b in buckets], stacks)


def analytics(user, window: Window, group_ids: list[int] | None) -> dict[str, Any]:
    """Every chart on the analytics page; `group_ids` already passed the gate."""
    rollups = Rollup.objects.scope(group_ids)
    in_window = window.rows(group_ids)
    buckets = window.buckets()
    labels = [window.label(b) for b in buckets]

    cache = {r["bucket"]: r for r in in_window.cache_series()}
    cache_rate = [
        rate(cache[b]["hits"] or 0, (cache[b]["hits"] or 0) + (cache[b]["misses"] or 0))
        if b in cache else None
        for b in buckets
    ]
    latency = {r["bucket"]: r for r in in_window.latency_series()}
    distribution = in_window.latency_distribution()
    hourly = rollups.window("h", _hour_floor(window.start), window.end).hourly_activity()
    # Staff scope reads the all-groups rows; ranking groups needs the per-group rows.
    per_group = Rollup.objects.all() if group_ids is None else rollups
    top = top_groups(per_group, _day_floor(window.start), window.end)
    bot_ids = figures_bot_ids(user)
    health = bot_health(user, window, bot_ids)

    return {
        "outcomes_chart": outcome_chart(window, group_ids),
        # Translators: a chart legend: the share of checks answered from the cache.
        "cache_chart": charts.lines(labels, {_("cache hit %"): cache_rate}, top=100),
        "latency_chart": charts.lines(labels, {
            # Translators: chart legends: median and 95th percentile decision time.
            _("p50 ms"): [(latency.get(b) or {}).get("p50") for b in buckets],
            _("p95 ms"): [(latency.get(b) or {}).get("p95") for b in buckets],
        }),
        "latency_distribution": charts.simple_bars(
            [_bucket_label(bound) for bound in histogram.LATENCY_BUCKETS_MS], distribution,
            count=wording.decisions),
        "latency_p50": histogram.percentile(distribution, 0.5),
        "latency_p95": histogram.percentile(distribution, 0.95),
        "hourly_chart": charts.simple_bars([f"{h:02d}:00" for h in range(24)], hourly, "#0ea5e9",
                                           count=wording.decisions),
        "top_groups": top,
        "api_calls": bot_calls(bot_ids, window),
        # Bots whose calls also serve other owners' groups are not counted: say how many.
        "calls_shared": sum(1 for h in health if h["shared"]),
        "groups_enabled": groups_enabled(user),
        "bot_health": health,
        "totals": in_window.totals(),
    }


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _day_floor(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _bucket_label(bound: float) -> str:
    # Translators: the last bar of the latency distribution: slower than every bound.
    return pgettext("latency bucket", "more") if bound == float("inf") else f"≤{bound:g}"


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


def figures_bot_ids(user) -> list[int] | None:
    """Bots whose call figures are this user's to see; None: every bot (staff).

    A bot one added is one's own. A bot someone else added (or the one from
    BOT_TOKEN, added by nobody) is the user's too while every group it serves is
    one they administer: its calls were then all made for them. A bot that also
    serves other owners' groups stays with its owner and staff, as its calls
    tell about those groups.
    """
    if access.sees_everything(user):
        return None
    if not user.is_authenticated:
        return []
    others = ProtectedGroup.objects.exclude(pk__in=access.visible_groups(user).values("pk"))
    sole = access.visible_bots(user).exclude(pk__in=others.values("bot_id"))
    # One query: the bots access.owned_bot_ids gives, and those serving only the user.
    return sorted(BotInstance.objects.filter(Q(owner=user) | Q(pk__in=sole.values("pk")))
                  .values_list("pk", flat=True))


def api_calls(user, window: Window) -> list[dict[str, Any]]:
    """Calls by method and outcome, of the bots `figures_bot_ids` gives the user."""
    return bot_calls(figures_bot_ids(user), window)


def bot_calls(bot_ids: list[int] | None, window: Window) -> list[dict[str, Any]]:
    start = _hour_floor(window.start)
    rows = ApiCallHourly.objects.scope(bot_ids).window(
        start, window.end
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


def bot_health(user, window: Window, allowed: list[int] | None) -> list[dict[str, Any]]:
    """Score 0-100: 70 points for the share of successful Telegram calls in the
    window, 30 for a fresh heartbeat. A bot with no calls, or one whose calls are
    not the user's to see (it serves other owners too), gets the full 70."""
    bots = list(access.visible_bots(user).select_related("status"))
    mine = [b.pk for b in bots if allowed is None or b.pk in allowed]
    success = ApiCallHourly.objects.scope(mine).window(
        _hour_floor(window.start), window.end
    ).success_by_bot()
    out = []
    for bot in bots:
        ok, total = success.get(bot.pk, (0, 0))
        state = bot_state(bot)
        fresh = state["key"] == "running"
        score = round(70 * (ok / total if total else 1) + (30 if fresh else 0))
        out.append({"bot": bot, "score": score, "calls": total, "ok_rate": rate(ok, total),
                    "fresh": fresh, "state": state, "shared": bot.pk not in mine})
    return out
