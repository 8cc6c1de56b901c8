"""Writes Nezuko's Grafana dashboards (ops/grafana/dashboards/*.json) from one description.

    python ops/grafana/build.py          # rewrite the JSON files
    python ops/grafana/build.py --check  # exit 1 if a file differs from what this builds

The JSON is generated so every panel has the same shape, which is what makes it
load in Grafana 10 and later by construction: `schemaVersion` 39, every
datasource given as `{"type": "prometheus", "uid": "${datasource}"}` where
`datasource` is a datasource template variable (no hard-coded datasource uid),
a `bot` variable from `label_values(nezuko_updates_total, bot)`, and
grid positions laid out here. tests/test_monitoring.py checks the files match
this script and that every metric the expressions name exists in `/metrics`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
BOT = 'bot=~"$bot"'
RATE = "$__rate_interval"


def stat(title: str, expr: str, unit: str = "short", description: str = "",
         thresholds: tuple[tuple[str, float | None], ...] = ()) -> dict:
    steps = [{"color": color, "value": value} for color, value in
             (thresholds or (("green", None),))]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": expr, "instant": True}],
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute",
                                                                   "steps": steps}},
                        "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "textMode": "auto",
                    "justifyMode": "auto", "orientation": "auto"},
        "_size": (4, 4),
    }


def series(title: str, *exprs: tuple[str, str], unit: str = "short", description: str = "",
           stack: bool = False, width: int = 12) -> dict:
    """A time series panel; `exprs` are (PromQL, legend) pairs."""
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [
            {"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": expr,
             "legendFormat": legend, "range": True}
            for n, (expr, legend) in enumerate(exprs)
        ],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                           "showPoints": "never",
                           "stacking": {"mode": "normal" if stack else "none", "group": "A"}},
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "_size": (width, 8),
    }


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


def quantile(q: float, metric: str, by: str = "", selector: str = BOT) -> str:
    labels = f"{by}, le" if by else "le"
    return (f"histogram_quantile({q}, sum by ({labels}) "
            f"(rate({metric}_bucket{{{selector}}}[{RATE}])))")


def layout(panels: list[dict]) -> list[dict]:
    """Left to right, wrapping at Grafana's 24 columns; rows start a new line."""
    x = y = line_height = 0
    placed = []
    for n, panel in enumerate(panels, start=1):
        width, height = panel.pop("_size")
        if panel["type"] == "row" or x + width > 24:
            x, y, line_height = 0, y + line_height, 0
        panel["gridPos"] = {"h": height, "w": width, "x": x, "y": y}
        panel["id"] = n
        placed.append(panel)
        x += width
        line_height = max(line_height, height)
        if panel["type"] == "row":
            x, y, line_height = 0, y + height, 0
    return placed


def dashboard(uid: str, title: str, description: str, panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["nezuko"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["nezuko"], "asDropdown": True,
                   "title": "Nezuko", "includeVars": True, "keepTime": True}],
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0, "refresh": 1,
             "regex": "", "options": []},
            {"name": "bot", "label": "Bot", "type": "query", "datasource": DATASOURCE,
             "query": {"query": "label_values(nezuko_updates_total, bot)",
                       "refId": "PrometheusVariableQueryEditor-VariableQuery"},
             "definition": "label_values(nezuko_updates_total, bot)",
             "includeAll": True, "multi": True, "allValue": ".*",
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
             "refresh": 2, "sort": 1, "hide": 0, "options": []},
        ]},
        "panels": layout(panels),
    }


def overview() -> dict:
    return dashboard("nezuko-overview", "Nezuko / Overview",
                     "Is every bot up, how busy, how late, how many errors.", [
        stat("Bots running", "sum(max by (bot) (nezuko_bot_heartbeat_fresh))",
             description="Active bots with a fresh heartbeat in some runbot process."),
        stat("Bots not running",
             "count(max by (bot) (nezuko_bot_heartbeat_fresh) == 0) or vector(0)",
             thresholds=(("green", None), ("red", 1))),
        stat("Updates / s", f"sum(rate(nezuko_updates_total{{{BOT}}}[{RATE}]))", unit="reqps"),
        stat("People active (5 min)", f'sum(nezuko_active_users{{{BOT}, window="5m"}})'),
        stat("People active (24 h)", f'sum(nezuko_active_users{{{BOT}, window="24h"}})'),
        stat("Groups active (24 h)", f'sum(nezuko_active_groups{{{BOT}, window="24h"}})'),
        stat("Update lag p95", quantile(0.95, "nezuko_update_lag_seconds"), unit="s",
             thresholds=(("green", None), ("orange", 10), ("red", 60))),
        stat("Errors / min", "sum(rate(nezuko_errors_total[5m])) * 60",
             thresholds=(("green", None), ("orange", 1))),
        stat("Owed actions", f"sum(nezuko_owed_actions{{{BOT}}})",
             thresholds=(("green", None), ("orange", 1))),
        stat("429 answers / min",
             f'sum(rate(nezuko_telegram_calls_total{{{BOT}, outcome="retry_after"}}[5m])) * 60',
             thresholds=(("green", None), ("orange", 1))),
        stat("Database up", "min(nezuko_database_up)",
             thresholds=(("red", None), ("green", 1))),
        stat("Redis up", "min(nezuko_redis_up)", description="Empty without REDIS_URL.",
             thresholds=(("red", None), ("green", 1))),
        series("Updates by type", (f"sum by (type) (rate(nezuko_updates_total{{{BOT}}}[{RATE}]))",
                                   "{{type}}"), unit="reqps", stack=True),
        series("Decisions by outcome",
               (f"sum by (outcome) (rate(nezuko_decisions_total[{RATE}]))", "{{outcome}}"),
               unit="ops", stack=True),
        series("Update lag", (quantile(0.5, "nezuko_update_lag_seconds"), "p50"),
               (quantile(0.95, "nezuko_update_lag_seconds"), "p95"), unit="s",
               description="From the update's date to its arrival (whole seconds)."),
        series("Errors by kind", (f"sum by (kind) (rate(nezuko_errors_total[{RATE}]))",
                                  "{{kind}}"), unit="ops", stack=True),
        series("People active", (f'sum by (bot) (nezuko_active_users{{{BOT}, window="5m"}})',
                                 "{{bot}} 5 min"),
               (f'sum by (bot) (nezuko_active_users{{{BOT}, window="24h"}})', "{{bot}} 24 h")),
        series("Groups active", (f'sum by (bot) (nezuko_active_groups{{{BOT}, window="5m"}})',
                                 "{{bot}} 5 min"),
               (f'sum by (bot) (nezuko_active_groups{{{BOT}, window="24h"}})', "{{bot}} 24 h")),
    ])


def engine() -> dict:
    return dashboard("nezuko-engine", "Nezuko / Engine",
                     "Handlers, commands, decisions and the membership cache.", [
        row("Handlers"),
        series("Handler runs by handler",
               (f"sum by (handler) (rate(nezuko_handled_total{{{BOT}}}[{RATE}]))", "{{handler}}"),
               unit="ops"),
        series("Handler p95 by handler",
               (quantile(0.95, "nezuko_handler_seconds", "handler"), "{{handler}}"), unit="s"),
        series("Handler errors",
               (f'sum by (handler) (rate(nezuko_handled_total{{{BOT}, outcome="error"}}[{RATE}]))',
                "{{handler}}"), unit="ops"),
        series("Handler time, all handlers",
               (quantile(0.5, "nezuko_handler_seconds"), "p50"),
               (quantile(0.99, "nezuko_handler_seconds"), "p99"), unit="s"),
        row("Commands"),
        series("Commands by command",
               (f"sum by (command) (rate(nezuko_commands_total{{{BOT}}}[{RATE}]))", "/{{command}}"),
               unit="ops"),
        series("Command p95 by command",
               (quantile(0.95, "nezuko_command_seconds", "command"), "/{{command}}"), unit="s"),
        series("Command errors",
               (f'sum by (command) (rate(nezuko_commands_total{{{BOT}, outcome="error"}}[{RATE}]))',
                "/{{command}}"), unit="ops", width=24),
        row("Decisions and cache"),
        series("Decision latency",
               (quantile(0.5, "nezuko_decision_seconds", selector=""), "p50"),
               (quantile(0.95, "nezuko_decision_seconds", selector=""), "p95"),
               (quantile(0.99, "nezuko_decision_seconds", selector=""), "p99"), unit="s"),
        series("Membership cache hit ratio",
               (f'sum(rate(nezuko_membership_cache_total{{result="hit"}}[{RATE}])) / '
                f"sum(rate(nezuko_membership_cache_total[{RATE}]))", "hit ratio"),
               unit="percentunit"),
        series("Owed actions by bot", (f"max by (bot) (nezuko_owed_actions{{{BOT}}})", "{{bot}}"),
               description="Restrictions and unmutes Telegram has not carried out yet."),
        series("Updates pending by bot",
               (f"sum by (bot) (nezuko_updates_pending{{{BOT}}})", "{{bot}}"),
               description="Journaled (confirmed to Telegram) and not yet handled."),
    ])


def telegram() -> dict:
    calls = f"nezuko_telegram_calls_total{{{BOT}}}"
    return dashboard("nezuko-telegram", "Nezuko / Telegram API and limiter",
                     "Bot API calls, 429 answers, the rate limiter and the webhook route.", [
        row("Bot API"),
        series("Calls by method", (f"sum by (method) (rate({calls}[{RATE}]))", "{{method}}"),
               unit="reqps", stack=True),
        series("Calls by outcome", (f"sum by (outcome) (rate({calls}[{RATE}]))", "{{outcome}}"),
               unit="reqps", stack=True),
        series("429 answers by bot",
               (f'sum by (bot) (rate(nezuko_telegram_calls_total{{{BOT}, outcome="retry_after"}}'
                f"[{RATE}]))", "{{bot}}"), unit="reqps"),
        series("Call latency p95 by method",
               (quantile(0.95, "nezuko_telegram_call_seconds", "method"), "{{method}}"), unit="s"),
        row("Rate limiter"),
        series("Queue depth by priority",
               (f"sum by (priority) (nezuko_limiter_queue_depth{{{BOT}}})", "{{priority}}")),
        series("Wait in the limiter by priority",
               (quantile(0.5, "nezuko_limiter_wait_seconds", "priority", selector=""),
                "{{priority}} p50"),
               (quantile(0.95, "nezuko_limiter_wait_seconds", "priority", selector=""),
                "{{priority}} p95"), unit="s"),
        series("Calls refused by the limiter",
               (f"sum by (priority, reason) (rate(nezuko_limiter_dropped_total{{{BOT}}}[{RATE}]))",
                "{{priority}} {{reason}}"), unit="reqps"),
        series("Webhook answers by status",
               (f"sum by (status) (rate(nezuko_webhook_requests_total[{RATE}]))", "{{status}}"),
               unit="reqps", stack=True),
    ])


def runtime() -> dict:
    return dashboard("nezuko-runtime", "Nezuko / Runtime and database",
                     "runbot processes, dependencies, spools, HTTP and the Python process.", [
        row("Processes and bots"),
        series("Scrape targets up", ('up{job="nezuko"}', "{{instance}}")),
        series("Bots by process", (f"nezuko_bot_up{{{BOT}}}", "{{bot}} @ {{instance}}"),
               description="1 while the bot runs in that runbot process."),
        series("Database and Redis",
               ("min by (instance) (nezuko_database_up)", "database {{instance}}"),
               ("min by (instance, client) (nezuko_redis_up)", "redis {{client}} {{instance}}")),
        series("Updates handled again",
               (f"sum by (reason) (rate(nezuko_updates_reprocessed_total{{{BOT}}}[{RATE}]))",
                "{{reason}}"), unit="ops"),
        row("Buffers and spools"),
        series("Records waiting on disk", ("sum by (spool) (nezuko_spooled_records)", "{{spool}}")),
        series("Records lost or set aside",
               (f"sum by (spool) (increase(nezuko_spool_dropped_total[{RATE}]))",
                "dropped {{spool}}"),
               (f"sum by (buffer) (increase(nezuko_records_set_aside_total[{RATE}]))",
                "set aside {{buffer}}"),
               (f"sum(increase(nezuko_events_dropped_total[{RATE}]))", "events dropped")),
        row("HTTP and the process"),
        series("HTTP answers by status",
               (f"sum by (status) (rate(django_http_responses_total_by_status_total[{RATE}]))",
                "{{status}}"), unit="reqps", stack=True),
        series("HTTP latency p95",
               (quantile(0.95, "django_http_requests_latency_including_middlewares_seconds",
                         selector=""), "p95"), unit="s"),
        series("Resident memory", ("process_resident_memory_bytes", "{{instance}}"), unit="bytes"),
        series("CPU", (f"rate(process_cpu_seconds_total[{RATE}])", "{{instance}}"),
               unit="percentunit"),
        series("Python garbage collections",
               (f"sum by (generation) (rate(python_gc_collections_total[{RATE}]))",
                "generation {{generation}}"), unit="ops"),
        series("Open file descriptors", ("process_open_fds", "{{instance}}"),
               ("process_max_fds", "max {{instance}}")),
    ])


DASHBOARDS = {"overview": overview, "engine": engine, "telegram": telegram, "runtime": runtime}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    OUT.mkdir(exist_ok=True)
    for name in DASHBOARDS:
        path = OUT / f"{name}.json"
        text = render(name)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run python ops/grafana/build.py): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
