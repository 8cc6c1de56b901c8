"""What the people directory costs: on the hot path, and to write.

    .venv/bin/python benchmarks/people.py [--people 20000]
    NEZUKO_BENCH_DATABASE_URL=postgres://... .venv/bin/python benchmarks/people.py

Figures, medians of several rounds on a throw-away database (SQLite unless
NEZUKO_BENCH_DATABASE_URL names a PostgreSQL one):

1. the observer (`verification.people.note`) per update that reaches the
   handlers: a private message, a group message, a button press; and
   `PeopleWriter.touch` per fast-path message (the hourly dedupe hit);
2. a flush: N people seen once each, new (inserts) and again (upserts):
   people written per second, and the statements it took.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from telegram import Update  # noqa: E402

import benchmarks.scratch  # noqa: E402, F401  (sets Django up)
from bots.models import BotInstance, BotUser, TelegramUser  # noqa: E402
from bots.people import PeopleWriter  # noqa: E402
from bots.spool import Spool  # noqa: E402
from verification.people import note  # noqa: E402

ROUNDS = 7


def update(i: int, kind: str) -> Update:
    user = {"id": 10_000_000 + i, "is_bot": False, "first_name": f"P{i}", "last_name": "X",
            "username": f"p{i}", "language_code": "es"}
    if kind == "button":
        return Update.de_json({"update_id": i, "callback_query": {
            "id": str(i), "from": user, "chat_instance": "1", "data": "nz:j:0"}}, None)
    chat = ({"id": user["id"], "type": "private", "first_name": "P"} if kind == "private"
            else {"id": -1001, "type": "supergroup", "title": "G"})
    return Update.de_json({"update_id": i, "message": {
        "message_id": i, "date": 0, "chat": chat, "from": user,
        "text": "/start" if kind == "private" else "hi"}}, None)


def per_call_us(fn, items) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for item in items:
            fn(item)
        samples.append((time.perf_counter() - start) / len(items) * 1e6)
    return statistics.median(samples)


def hot_path(bot_pk: int, count: int, spool_dir: Path) -> None:
    for kind in ("private", "group", "button"):
        updates = [update(i, kind) for i in range(count)]
        writer = PeopleWriter(max_buffered=10**9, spool=Spool(spool_dir, f"hot-{kind}"))
        us = per_call_us(lambda u, w=writer: note(w, bot_pk, u), updates)
        print(f"observer, {kind} update: {us:.2f} µs per update "
              f"({writer.buffered} people buffered)")
    writer = PeopleWriter(spool=Spool(spool_dir, "hot-touch"))
    ids = list(range(count))
    for i in ids:
        writer.touch(bot_pk, i)
    us = per_call_us(lambda i: writer.touch(bot_pk, i), ids)
    print(f"touch (fast path, already touched this hour): {us:.3f} µs per message")


def flush(bot_pk: int, count: int, spool_dir: Path) -> None:
    for label in ("new people (insert)", "known people (upsert)"):
        writer = PeopleWriter(max_buffered=10**9, spool=Spool(spool_dir, "flush"))
        for u in (update(i, "private") for i in range(count)):
            note(writer, bot_pk, u)
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            written = writer.flush()
            elapsed = time.perf_counter() - start
        writer.close_spool()
        statements = sum(1 for q in queries.captured_queries
                         if not q["sql"].startswith(("SAVEPOINT", "RELEASE")))
        print(f"flush, {label}: {written} in {elapsed:.2f} s = {written / elapsed:,.0f} "
              f"people/s, {statements} statements ({connection.vendor})")
    assert TelegramUser.objects.count() >= count and BotUser.objects.count() >= count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    connection.force_debug_cursor = False
    bot, _ = BotInstance.objects.get_or_create(telegram_id=42, defaults={
        "username": "bench_bot", "encrypted_token": "x", "token_fingerprint": "bench"})
    spool_dir = benchmarks.scratch.DB.parent / "people-spool"
    hot_path(bot.pk, args.people, spool_dir)
    flush(bot.pk, args.people, spool_dir)


if __name__ == "__main__":
    main()
