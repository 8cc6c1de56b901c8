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

The growth funnel is loaded from the same events: one journey
(`groups.Attribution`) per group and person restricted there, 40 % of them
joining the channel (60 % of those through the group's own link), 85 % of the
joiners verified, 30 % of the joiners leaving within 20 days; their day sums
(`groups.FunnelDay`, what the funnel reads); and one member count per group
and channel and day (`analytics.SizeSample`).
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
    run_steps(steps)


def run_steps(steps: list[tuple[str, str]]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for label, sql in steps:
            started = time.perf_counter()
            cursor.execute(sql)
            print(f"  loaded {label}: {cursor.rowcount:,} rows "
                  f"in {time.perf_counter() - started:.1f} s", flush=True)
        cursor.execute("ANALYZE")


# The same sums `groups.attribution` keeps step by step, from the journeys at once.
FUNNEL_DAYS_SQL = """
    INSERT INTO groups_funnelday (group_id, channel_chat_id, day, started, warned,
        joined_exact, joined_likely, verified, joined, left_7d, left_30d)
    SELECT group_id, channel_chat_id, day, sum(s), sum(w), sum(je), sum(jl), sum(v), sum(j),
           sum(l7), sum(l30)
    FROM (SELECT group_id, channel_chat_id, (started_at AT TIME ZONE 'UTC')::date AS day,
                 1 AS s, (warned_at IS NOT NULL)::int AS w, (how = 'exact')::int AS je,
                 (how = 'likely')::int AS jl, (verified_at IS NOT NULL)::int AS v,
                 0 AS j, 0 AS l7, 0 AS l30
          FROM groups_attribution
          UNION ALL
          SELECT group_id, channel_chat_id, (joined_at AT TIME ZONE 'UTC')::date,
                 0, 0, 0, 0, 0, 1,
                 COALESCE((left_at < joined_at + interval '7 days')::int, 0),
                 COALESCE((left_at < joined_at + interval '30 days')::int, 0)
          FROM groups_attribution WHERE joined_at IS NOT NULL) AS steps
    GROUP BY 1, 2, 3
"""


def load_growth() -> None:
    """Journeys, channels and member counts derived from the loaded events."""
    from groups.models import ProtectedGroup

    groups = ProtectedGroup.objects.order_by("pk")
    first = groups.values_list("pk", flat=True)[0]
    bot = groups.values_list("bot_id", flat=True)[0]
    run_steps([
        ("channels", f"""
            INSERT INTO groups_enforcedchannel (bot_id, chat_id, title, username, invite_link,
                bot_is_admin, created_at, updated_at)
            SELECT {bot}, -2000000000000 - g, 'Bench channel ' || g, '', '', true, now(), now()
            FROM generate_series(0, {GROUPS - 1}) AS g
            ON CONFLICT DO NOTHING
        """),
        ("group-channel links", f"""
            INSERT INTO groups_groupchannel (group_id, channel_id, invite_link, created_at)
            SELECT {first} + g, c.id, 'https://t.me/+bench' || g, now()
            FROM generate_series(0, {GROUPS - 1}) AS g
            JOIN groups_enforcedchannel c ON c.chat_id = -2000000000000 - g
            ON CONFLICT DO NOTHING
        """),
        ("funnel journeys", f"""
            INSERT INTO groups_attribution (group_id, channel_chat_id, user_id, started_at,
                warned_at, joined_at, how, verified_at, left_at)
            SELECT group_id, -2000000000000 - (group_id - {first}), user_id, w, w,
                   CASE WHEN r < 0.4 THEN w + j END,
                   CASE WHEN r < 0.24 THEN 'exact' WHEN r < 0.4 THEN 'likely' ELSE '' END,
                   CASE WHEN r < 0.34 THEN w + j + interval '1 minute' END,
                   CASE WHEN r < 0.4 AND r2 < 0.3
                        THEN LEAST(now(), w + j + random() * interval '20 days') END
            FROM (SELECT group_id, user_id, min(created_at) AS w, random() AS r,
                         random() AS r2, random() * interval '6 hours' AS j
                  FROM verification_verificationevent WHERE outcome = 'restricted'
                  GROUP BY group_id, user_id) AS s
        """),
        ("funnel day sums", FUNNEL_DAYS_SQL),
        ("member counts", f"""
            INSERT INTO analytics_sizesample (day, bot_id, chat_id, kind, count, taken_at)
            SELECT d::date, {bot}, chat, kind, 1000 + floor(random() * 50000)::int, d
            FROM generate_series(now() - interval '30 days', now(), interval '1 day') AS d,
                 (SELECT chat_id AS chat, 'group' AS kind FROM groups_protectedgroup
                  UNION ALL SELECT chat_id, 'channel' FROM groups_enforcedchannel) AS chats
        """),
    ])


def queries() -> dict[str, Callable[[], object]]:
    from django.db.models import Max, Min
    from django.utils import timezone

    from analytics import growth
    from analytics.models import ApiCallHourly, DecisionRollup, Rollup
    from dashboard.figures import Window, today_window
    from groups.models import FunnelDay, ProtectedGroup
    from verification.models import VerificationEvent

    busiest = list(ProtectedGroup.objects.order_by("pk").values_list("pk", flat=True)[:3])
    now = timezone.now()
    week_h, month_d = Window.of(7, "hour", now), Window.of(30, "day", now)
    owner = Rollup.objects.scope(busiest)
    staff = Rollup.objects.scope(None)
    ids = VerificationEvent.objects.aggregate(low=Min("pk"), high=Max("pk"))
    middle = ((ids["low"] or 0) + (ids["high"] or 0)) // 2
    owner_days = FunnelDay.objects.scope(busiest).days(month_d.start.date(), now.date())
    staff_days = FunnelDay.objects.scope(None).days(month_d.start.date(), now.date())
    owner_chats = growth.group_chats(busiest)
    return {
        "owner 30d funnel": lambda: owner_days.funnel(now.date()),
        "owner 30d funnel per channel": lambda: owner_days.by_channel(now.date()),
        "owner 30d funnel by day": lambda: owner_days.daily(),
        "staff 30d funnel": lambda: staff_days.funnel(now.date()),
        "staff 30d funnel by day": lambda: staff_days.daily(),
        "staff 30d funnel per channel": lambda: staff_days.by_channel(now.date()),
        "owner 30d member counts": lambda: growth.size_series(
            owner_chats, month_d.start.date(), now.date()),
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
                           "analytics_sizesample, groups_protectedgroup, "
                           "bots_botinstance CASCADE")
    if not VerificationEvent.objects.exists():
        print(f"Loading {args.events:,} events and their rollups (once)…", flush=True)
        load(args.events)
    from analytics.models import ApiCallRollup, DecisionRollup, Rollup, SizeSample
    from groups.models import Attribution, FunnelDay

    if not Attribution.objects.exists():
        print("Loading the growth funnel and member counts (once)…", flush=True)
        load_growth()
    elif not FunnelDay.objects.exists():
        run_steps([("funnel day sums", FUNNEL_DAYS_SQL)])

    print(f"events {VerificationEvent.objects.count():,}, minute rollups "
          f"{DecisionRollup.objects.count():,}, hour/day rollups {Rollup.objects.count():,}, "
          f"API call rollups {ApiCallRollup.objects.count():,}, funnel journeys "
          f"{Attribution.objects.count():,}, funnel day sums {FunnelDay.objects.count():,}, "
          f"member counts {SizeSample.objects.count():,}")
    ok = measure(args.runs)
    print(f"\nEvery p95 under {TARGET_MS:.0f} ms: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
