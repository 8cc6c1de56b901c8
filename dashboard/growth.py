"""The growth section of the group and analytics pages (`_growth.html`), from
`analytics.growth`; `group_ids` have passed the gate already."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analytics import growth

# Staff see every group: the section shows the busiest, however many there are.
MAX_ROWS = 20


def growth_context(group_ids: list[int] | None, start: datetime, end: datetime) -> dict[str, Any]:
    rows = growth.funnel_by_channel(group_ids, start, end)
    hidden = max(0, len(rows) - MAX_ROWS)
    rows = sorted(rows, key=lambda r: -r["warned"])[:MAX_ROWS]
    for row in rows:
        row["kept_7d_pct"] = _pct(growth.retention(row, 7))
        row["kept_30d_pct"] = _pct(growth.retention(row, 30))
        row["joined_pct"] = _pct(row["joined"] / row["warned"] if row["warned"] else None)
    days = growth.funnel_series(group_ids, start, end)
    peak = max((d["warned"] for d in days), default=0) or 1
    for day in days:
        day["joined"] = day["joined_exact"] + day["joined_likely"]
        day["width"] = round(100 * day["warned"] / peak)
        day["joined_width"] = round(100 * day["joined"] / peak)
    # Member counts of the groups shown (all of them when they are few).
    shown = group_ids if group_ids is not None and len(group_ids) <= MAX_ROWS else \
        sorted({r["group_id"] for r in rows})
    sizes = _size_rows(growth.size_series(growth.group_chats(shown), start.date(), end.date()))
    names = growth.chat_names(shown) if sizes else {}
    for size in sizes:
        size["name"] = names.get(size["chat_id"], str(size["chat_id"]))
    return {"growth": {"funnel": rows, "hidden": hidden, "days": days, "sizes": sizes}}


def _size_rows(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per chat: the first and latest count of the period and the change."""
    by_chat: dict[int, dict[str, Any]] = {}
    for sample in samples:
        row = by_chat.setdefault(sample["chat_id"], {
            "chat_id": sample["chat_id"], "kind": sample["kind"],
            "first": sample["count"], "first_day": sample["day"]})
        row["latest"], row["latest_day"] = sample["count"], sample["day"]
    for row in by_chat.values():
        row["change"] = row["latest"] - row["first"]
    return list(by_chat.values())


def _pct(share: float | None) -> int | None:
    return None if share is None else round(100 * share)
