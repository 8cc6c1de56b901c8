"""Chart geometry for server-side SVG. Python computes coordinates; the templates
under templates/dashboard/charts/ draw them, so no HTML is built in code."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.translation import gettext as _

from dashboard import wording
from dashboard.wording import compact, number

WIDTH, HEIGHT = 640, 180
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 44, 22, 8

OUTCOME_COLORS = {
    "verified": "#3b82f6",
    "restricted": "#ef4444",
    "unmuted": "#22c55e",
    "kicked": "#991b1b",
    "deleted": "#f59e0b",
    "join_approved": "#14b8a6",
    "join_declined": "#a855f7",
    "error": "#6b7280",
}
LINE_COLORS = ("#3b82f6", "#ef4444", "#22c55e", "#f59e0b")


def nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _y_ticks(top: float) -> list[dict]:
    plot = HEIGHT - PAD_BOTTOM - PAD_TOP
    return [
        {"y": round(PAD_TOP + plot - plot * f, 1), "label": compact(top * f)}
        for f in (0, 0.5, 1)
    ]


def _x_labels(labels: Sequence[str], step_width: float) -> list[dict]:
    # Label at most ~8 positions so they never overlap.
    every = max(1, len(labels) // 8)
    return [
        {"x": round(PAD_LEFT + step_width * (i + 0.5), 1), "label": label}
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def stacked_bars(labels: Sequence[str], stacks: dict[str, Sequence[float]]) -> dict:
    """Vertical bars, one per label, stacked by series (e.g. outcome)."""
    count = max(len(labels), 1)
    totals = [sum(series[i] for series in stacks.values()) for i in range(len(labels))]
    # Counts are whole: an axis of at least 2 never shows a tick at "0.5".
    top = max(nice_max(max(totals, default=0)), 2)
    plot_w, plot_h = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / count
    bars = []
    for i, label in enumerate(labels):
        y = PAD_TOP + plot_h
        for name, series in stacks.items():
            value = series[i]
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            bars.append({
                "x": round(PAD_LEFT + step * i + step * 0.1, 1), "y": round(y, 1),
                "w": round(step * 0.8, 1), "h": round(h, 1),
                "color": OUTCOME_COLORS.get(name, LINE_COLORS[0]),
                "title": tooltip(label, wording.series_count(name, value)),
            })
    return {
        "width": WIDTH, "height": HEIGHT, "bars": bars, "y_ticks": _y_ticks(top),
        "x_labels": _x_labels(labels, step), "baseline": PAD_TOP + plot_h,
        "legend": [{"name": wording.series(n), "color": OUTCOME_COLORS.get(n, LINE_COLORS[0])}
                   for n in stacks],
        "empty": not any(totals),
        "total": sum(totals),  # what the chart counts; a browser test watches it grow
    }


def lines(labels: Sequence[str], series: dict[str, Sequence[float | None]], *,
          top: float | None = None) -> dict:
    """Line chart; a None value breaks the line (no data in that bucket)."""
    count = max(len(labels), 1)
    values = [v for s in series.values() for v in s if v is not None]
    top = top or nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / count
    paths = []
    for n, (name, points) in enumerate(series.items()):
        d, dots, pen_down = [], [], False
        for i, value in enumerate(points):
            if value is None:
                pen_down = False
                continue
            x = PAD_LEFT + step * (i + 0.5)
            y = PAD_TOP + plot_h - plot_h * min(value, top) / top
            d.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
            # A dot per value, so a lone hour with data still shows.
            dots.append({"x": round(x, 1), "y": round(y, 1),
                         "title": tooltip(labels[i], number(value))})
            pen_down = True
        paths.append({"name": name, "d": " ".join(d), "dots": dots,
                      "color": LINE_COLORS[n % len(LINE_COLORS)]})
    return {
        "width": WIDTH, "height": HEIGHT, "paths": paths, "y_ticks": _y_ticks(top),
        "x_labels": _x_labels(labels, step), "baseline": PAD_TOP + plot_h,
        "legend": [{"name": p["name"], "color": p["color"]} for p in paths],
        "empty": not values,
        "total": len(values),
    }


def tooltip(label: str, value: str) -> str:
    # Translators: a chart tooltip, e.g. "14:00: 5 errors" (a bar's time, then its value).
    return _("%(label)s: %(value)s") % {"label": label, "value": value}


def simple_bars(labels: Sequence[str], values: Sequence[float], color: str = "#6366f1",
                count: Callable[[float], str] = number) -> dict:
    """Bars of one series; each tooltip reads "label: value" with `count` saying the
    value ("5 decisions": it knows the noun and its plural forms)."""
    chart = stacked_bars(labels, {"count": values})
    bars = [bar | {"color": color, "title": tooltip(labels[i], count(values[i]))}
            for i, bar in zip((i for i, v in enumerate(values) if v), chart["bars"],
                              strict=True)]
    return chart | {"legend": [], "bars": bars}
