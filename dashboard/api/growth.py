"""/growth: the funnel per group and channel, its daily series and member counts, as data.

The same reads as the pages' growth section (`analytics.growth`) behind the same
gate: another owner's group is a 404.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema

from analytics import growth
from dashboard import access

router = Router(tags=["growth"])

# Whole UTC days: "24h" is yesterday and today.
PERIODS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}


class GrowthQuery(Schema):
    period: Literal["24h", "7d", "30d", "90d"] = "30d"
    group: int | None = None


class FunnelOut(Schema):
    """Journeys begun in the period's days, by stage; of the people who joined in those
    days at least 7 full days ago (`due_7d`), `kept_7d` stayed subscribed 7 days;
    likewise for 30 days."""

    started: int
    warned: int
    joined_exact: int
    joined_likely: int
    verified: int
    due_7d: int
    kept_7d: int
    due_30d: int
    kept_30d: int


class ChannelFunnelOut(FunnelOut):
    group_id: int
    channel_chat_id: int
    channel: str


class DayOut(Schema):
    day: date
    warned: int
    joined_exact: int
    joined_likely: int
    verified: int


class SizeOut(Schema):
    chat_id: int
    kind: Literal["group", "channel"]
    day: date
    count: int


class GrowthOut(Schema):
    start: datetime
    end: datetime
    funnel: FunnelOut
    channels: list[ChannelFunnelOut]
    days: list[DayOut]
    sizes: list[SizeOut]


@router.get("/growth", response=GrowthOut)
def get_growth(request: HttpRequest, query: Query[GrowthQuery]):
    group_ids = access.visible_group_ids(request.auth)
    if query.group is not None:
        group_ids = [access.get_group_for(request.auth, query.group).pk]
    end = timezone.now()
    start = end - timedelta(days=PERIODS[query.period])
    return {
        "start": start, "end": end,
        "funnel": growth.funnel(group_ids, start, end, end.date()),
        "channels": growth.funnel_by_channel(group_ids, start, end, end.date()),
        "days": growth.funnel_series(group_ids, start, end),
        "sizes": growth.size_series(growth.group_chats(group_ids), start.date(), end.date()),
    }
