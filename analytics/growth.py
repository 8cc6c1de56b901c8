"""The growth Nezuko brings: the funnel per group and channel, and the user-growth series.

Read by the dashboard's group and analytics pages and by the API
(`/api/v1/growth`). Tenancy first, as everywhere in analytics: `group_ids` are
the groups the gate allows, `None` for staff (every group).

Funnel: the day sums (`groups.models.FunnelDay`) of the UTC days of the
period: journeys begun, by stage: warned -> joined the channel (exact /
likely) -> verified in the group; and of the people who joined at least 7
(30) days ago, how many are still subscribed 7 (30) days after joining.
Series: the same stages per day, and each chat's daily member count
(`analytics.models.SizeSample`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db.models import Q

from analytics.models import SizeSample
from groups.models import FunnelDay, GroupChannel


def _days(group_ids: list[int] | None, start: datetime, end: datetime):
    """The day sums of these groups for the UTC days from `start`'s to `end`'s."""
    return FunnelDay.objects.scope(group_ids).days(start.date(), end.date())


def funnel(group_ids: list[int] | None, start: datetime, end: datetime,
           today: date | None = None) -> dict[str, int]:
    """{stage: count} over every allowed group and channel together."""
    return _days(group_ids, start, end).funnel(today)


def funnel_by_channel(group_ids: list[int] | None, start: datetime, end: datetime,
                      today: date | None = None) -> list[dict[str, Any]]:
    """One row per group and channel, named, with `joined` = exact + likely."""
    rows = _days(group_ids, start, end).by_channel(today)
    names = _channel_names({r["group_id"] for r in rows})
    return [r | {"joined": r["joined_exact"] + r["joined_likely"],
                 "channel": names.get((r["group_id"], r["channel_chat_id"]),
                                      str(r["channel_chat_id"]))}
            for r in rows]


def funnel_series(group_ids: list[int] | None, start: datetime,
                  end: datetime) -> list[dict[str, Any]]:
    """[{day, warned, joined_exact, joined_likely, verified}] by the day journeys began."""
    return _days(group_ids, start, end).daily()


def size_series(bot_chats: list[tuple[int, int]], start: date,
                end: date) -> list[dict[str, Any]]:
    """[{chat_id, kind, day, count}] for these (bot id, chat id) pairs, by day; one query."""
    if not bot_chats:
        return []
    by_bot: dict[int, list[int]] = {}
    for bot_id, chat_id in bot_chats:
        by_bot.setdefault(bot_id, []).append(chat_id)
    chats = Q()
    for bot_id, chat_ids in by_bot.items():
        chats |= Q(bot_id=bot_id, chat_id__in=chat_ids)
    return list(SizeSample.objects.filter(chats, day__gte=start, day__lte=end)
                .values("chat_id", "kind", "day", "count").order_by("day", "chat_id"))


def group_chats(group_ids: list[int] | None) -> list[tuple[int, int]]:
    """(bot id, chat id) of these groups and of the channels they require."""
    links = GroupChannel.objects.all() if group_ids is None else \
        GroupChannel.objects.filter(group_id__in=group_ids)
    pairs = set()
    for bot_id, group_chat, channel_chat in links.values_list(
            "group__bot_id", "group__chat_id", "channel__chat_id"):
        pairs |= {(bot_id, group_chat), (bot_id, channel_chat)}
    return sorted(pairs)


def chat_names(group_ids: list[int] | None) -> dict[int, str]:
    """Chat id -> the name people know it by, for these groups and their channels."""
    links = GroupChannel.objects.all() if group_ids is None else \
        GroupChannel.objects.filter(group_id__in=group_ids)
    names = {}
    for link in links.select_related("group", "channel"):
        names[link.group.chat_id] = str(link.group)
        names[link.channel.chat_id] = str(link.channel)
    return names


def retention(row: dict[str, int], days: int) -> float | None:
    """Share of the joiners old enough to tell who are still subscribed after `days`."""
    due = row.get(f"due_{days}d") or 0
    return row.get(f"kept_{days}d", 0) / due if due else None


def _channel_names(group_ids: set[int]) -> dict[tuple[int, int], str]:
    links = GroupChannel.objects.filter(group_id__in=group_ids).select_related("channel")
    return {(link.group_id, link.channel.chat_id): str(link.channel) for link in links}
