"""Analytics queries at scale: load 10 million events into PostgreSQL, fold them
into rollups, and print p50/p95 per dashboard query. Target: p95 < 50 ms.

    createdb -h 127.0.0.1 -U postgres bench_analytics   # or let the script do it
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_analytics \
        .venv/bin/python benchmarks/analytics_queries.py [--events 10000000] [--runs 30]

Loading happens once (set --reload to start over); later runs only time the
queries. Rows are generated inside PostgreSQL (generate_series) and the
rollups are built from the events with the same GROUP BY the folding does,
so the data has the shape production would have: 1,000 groups with a skewed
load (a few busy groups, a long tail), 30 days, eight outcomes, API calls per
minute. The owner in the figures administers the three busiest groups: the
worst case for a tenant-scoped query.
"""

# The SQL is built from this script's own integers (no outside input).
# ruff: noqa: S608

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nezuko.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("NEZUKO_READ_DOTENV", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")

GROUPS = 1000
TARGET_MS = 50.0


def ensure_database(url: str) -> None:
    from urllib.parse import urlparse

    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def load(events: int) -> None:
    from django.db import connection

    from analytics.tests.factory import make_bot
    from groups.models import ProtectedGroup

    bot = make_bot(username="bench_bot")
    ProtectedGroup.objects.bulk_create(
        ProtectedGroup(bot=bot, chat_id=-1000000000000 - i, title=f"Bench group {i:04d}")
        for i in range(GROUPS)
    )
    first = ProtectedGroup.objects.order_by("pk").values_list("pk", flat=True)[0]
    buckets = "1,2,5,10,25,50,100,250,500,1000,2500,5000"
    histogram = ", ".join(
        f"count(*) FILTER (WHERE latency_ms <= {b}"
        + (f" AND latency_ms > {prev})" if prev else ")")
        for prev, b in zip([None, *buckets.split(",")], buckets.split(","), strict=False)
    ) + ", count(*) FILTER (WHERE latency_ms > 5000)"
    steps = [
        ("events", f"""
            INSERT INTO verification_verificationevent
                (created_at, bot_id, group_id, chat_id, user_id, user_name, outcome,
                 missing_channel_ids, latency_ms, cache_hit, detail)
            SELECT now() - random() * interval '30 days', {bot.pk}, {first} + g,
                   -1000000000000 - g, 100000 + (i % 500000), '',
                   (ARRAY['verified','verified','verified','verified','restricted',
                          'unmuted','join_approved','kicked','deleted','error'])[1 + (i % 10)],
                   '[]'::jsonb, 1 + random() * random() * 400, random() < 0.9, ''
            FROM (SELECT i, floor(power(random(), 3) * {GROUPS})::int AS g
                  FROM generate_series(1, {events}) AS i) AS s
        """),
        ("minute rollups", f"""
            INSERT INTO analytics_decisionrollup (minute, group_id, bot_id, outcome, count,
                cache_hits, cache_misses, latency_sum_ms, latency_buckets)
            SELECT date_trunc('minute', created_at), group_id, min(bot_id), outcome, count(*),
                   count(*) FILTER (WHERE cache_hit), count(*) FILTER (WHERE NOT cache_hit),
                   sum(latency_ms), jsonb_build_array({histogram})
            FROM verification_verificationevent GROUP BY 1, 2, 4
        """),
    ]
    for span, unit in (("h", "hour"), ("d", "day")):
        for scope, group_expr in (("per group", "group_id"), ("all groups", "0")):
            steps.append((f"{unit} rollups, {scope}", f"""
                INSERT INTO analytics_rollup (span, bucket, group_id, outcome, count,
                    cache_hits, cache_misses, latency_sum_ms, latency_buckets)
                SELECT '{span}', date_trunc('{unit}', created_at), {group_expr}, outcome,
                       count(*),
                       count(*) FILTER (WHERE cache_hit), count(*) FILTER (WHERE NOT cache_hit),
                       sum(latency_ms), jsonb_build_array({histogram})
                FROM verification_verificationevent GROUP BY 1, 2, 3, 4
            """))
    steps.append(("day totals per group", """
        INSERT INTO analytics_rollup (span, bucket, group_id, outcome, count, cache_hits,
            cache_misses, latency_sum_ms, latency_buckets)
        SELECT 't', bucket, group_id, '*', sum(count), sum(cache_hits), sum(cache_misses),
               sum(latency_sum_ms), '[]'::jsonb
        FROM analytics_rollup WHERE span = 'd' AND group_id <> 0 GROUP BY bucket, group_id
    """))
    steps.append(("api call rollups", f"""
        INSERT INTO analytics_apicallrollup
            (minute, bot_id, method, outcome, count, latency_sum_ms)
        SELECT m, {bot.pk}, method, outcome, 1 + floor(random() * 50)::int, random() * 2000
        FROM generate_series(date_trunc('minute', now() - interval '30 days'),
                             now(), interval '1 minute') AS m,
             unnest(ARRAY['getChatMember','restrictChatMember','sendMessage','deleteMessage',
                          'answerCallbackQuery','getUpdates']) AS method,
             unnest(ARRAY['ok','retry_after']) AS outcome
        WHERE outcome = 'ok' OR random() < 0.05
    """))
    steps.append(("api call hourly rollups", """
        INSERT INTO analytics_apicallhourly (hour, bot_id, method, outcome, count, latency_sum_ms)
        SELECT date_trunc('hour', minute), bot_id, method, outcome, sum(count), sum(latency_sum_ms)
        FROM analytics_apicallrollup GROUP BY 1, 2, 3, 4
    """))
    with connection.cursor() as cursor:
        for label, sql in steps:
            started = time.perf_counter()
            cursor.execute(sql)
            print(f"  loaded {label}: {cursor.rowcount:,} rows "
                  f"in {time.perf_counter() - started:.1f} s", flush=True)
        cursor.execute("ANALYZE")


def queries() -> dict[str, Callable[[], object]]:
    from django.db.models import Max, Min
    from django.utils import timezone

    from analytics.models import ApiCallHourly, DecisionRollup, Rollup
    from dashboard.figures import Window, today_window
    from groups.models import ProtectedGroup
    from verification.models import VerificationEvent

    busiest = list(ProtectedGroup.objects.order_by("pk").values_list("pk", flat=True)[:3])
    now = timezone.now()
    week_h, month_d = Window.of(7, "hour", now), Window.of(30, "day", now)
    owner = Rollup.objects.scope(busiest)
    staff = Rollup.objects.scope(None)
    ids = VerificationEvent.objects.aggregate(low=Min("pk"), high=Max("pk"))
    middle = ((ids["low"] or 0) + (ids["high"] or 0)) // 2
    return {
        "owner today totals": lambda: owner.window("d", *today_window(now)).totals(),
        "staff today totals": lambda: staff.window("d", *today_window(now)).totals(),
        "owner 7d hourly outcomes": lambda: owner.window("h", week_h.start, week_h.end)
        .outcome_series(),
        "staff 7d hourly outcomes": lambda: staff.window("h", week_h.start, week_h.end)
        .outcome_series(),
        "staff 30d daily outcomes": lambda: staff.window("d", month_d.start, month_d.end)
        .outcome_series(),
        "owner 7d cache hit rate": lambda: owner.window("h", week_h.start, week_h.end)
        .cache_series(),
        "owner 7d latency p50/p95": lambda: owner.window("h", week_h.start, week_h.end)
        .latency_series(),
        "staff 7d latency p50/p95": lambda: staff.window("h", week_h.start, week_h.end)
        .latency_series(),
        "staff 30d latency histogram": lambda: staff.window("d", month_d.start, month_d.end)
        .latency_distribution(),
        "owner 30d hourly activity": lambda: owner.window("h", month_d.start, month_d.end)
        .hourly_activity(),
        "staff 30d hourly activity": lambda: staff.window("h", month_d.start, month_d.end)
        .hourly_activity(),
        "staff 30d top groups": lambda: Rollup.objects.top_groups(month_d.start, month_d.end),
        "owner last hour per minute": lambda: DecisionRollup.objects.scope(busiest)
        .since(now - timedelta(hours=1)).per_minute(),
        "staff last hour per minute": lambda: DecisionRollup.objects.scope(None)
        .since(now - timedelta(hours=1)).per_minute(),
        "staff 7d API calls by method": lambda: ApiCallHourly.objects.scope(None)
        .window(week_h.start, week_h.end).by_method_outcome(),
        "staff 30d bot success rates": lambda: ApiCallHourly.objects.scope(None)
        .window(month_d.start, month_d.end).success_by_bot(),
        "owner latest 30 events (feed)": lambda: list(
            VerificationEvent.objects.for_groups(busiest).latest(30)),
        "owner events page, deep keyset": lambda: list(
            VerificationEvent.objects.for_groups(busiest)
            .filter(pk__lt=middle).order_by("-pk")[:50]),
        "owner events of one outcome": lambda: list(
            VerificationEvent.objects.for_groups(busiest).filter(outcome="error")
            .order_by("-pk")[:50]),
    }


def measure(runs: int) -> bool:
    print(f"\n{'query':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  rows")
    ok = True
    for name, query in queries().items():
        query(), query()  # warm the connection and PostgreSQL's cache
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            result = query()
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p95 = timings[max(0, int(round(0.95 * len(timings))) - 1)]
        rows = len(result) if hasattr(result, "__len__") else 1
        flag = "" if p95 < TARGET_MS else "  <-- over target"
        ok &= p95 < TARGET_MS
        print(f"{name:34} {statistics.median(timings):8.2f} {p95:8.2f} {timings[-1]:8.2f}"
              f"  {rows}{flag}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reload", action="store_true", help="drop the data and load again")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print("Set DATABASE_URL to a PostgreSQL database (it is filled with benchmark data).")
        return 2
    ensure_database(url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from verification.models import VerificationEvent

    call_command("migrate", verbosity=0)
    if args.reload:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE verification_verificationevent, analytics_decisionrollup, "
                           "analytics_rollup, analytics_apicallrollup, analytics_apicallhourly, "
                           "groups_protectedgroup, "
                           "bots_botinstance CASCADE")
    if not VerificationEvent.objects.exists():
        print(f"Loading {args.events:,} events and their rollups (once)…", flush=True)
        load(args.events)
    from analytics.models import ApiCallRollup, DecisionRollup, Rollup

    print(f"events {VerificationEvent.objects.count():,}, minute rollups "
          f"{DecisionRollup.objects.count():,}, hour/day rollups {Rollup.objects.count():,}, "
          f"API call rollups {ApiCallRollup.objects.count():,}")
    ok = measure(args.runs)
    print(f"\nEvery p95 under {TARGET_MS:.0f} ms: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
