"""A throw-away Django for the benchmarks: import this before anything that needs Django.

Importing it points Django at a fresh SQLite file in a temporary directory
(no .env; no Redis unless NEZUKO_BENCH_REDIS_URL names one, no PostgreSQL unless
NEZUKO_BENCH_DATABASE_URL does) and sets Django
up; `register` and `protect` build the rows a benchmark scene needs. The
scripts still run `migrate` themselves.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DB = Path(tempfile.mkdtemp()) / "bench.sqlite3"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "nezuko.settings",
        "NEZUKO_READ_DOTENV": "false",
        "DEBUG": "true",
        "LOG_LEVEL": "ERROR",
        "LOG_FORMAT": "console",
        # A benchmark that measures PostgreSQL names a database of its own.
        "DATABASE_URL": os.environ.get("NEZUKO_BENCH_DATABASE_URL") or f"sqlite:///{DB}",
        # Journals and spools are keyed by bot id: never replay another run's leftovers.
        "NEZUKO_SPOOL_DIR": str(DB.parent / "spool"),
        # A benchmark that measures Redis (a cold start's bulk load) names a db of its own.
        "REDIS_URL": os.environ.get("NEZUKO_BENCH_REDIS_URL", ""),
        # Redis would turn the update bus on: the benchmarks measure one process's
        # engine as before, and the ones about the bus (benchmarks/scale*.py) say so.
        "NEZUKO_UPDATE_BUS": os.environ.get("NEZUKO_UPDATE_BUS", "off"),
    }
)

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402

from bots.models import BotInstance  # noqa: E402
from bots.registration import register_bot  # noqa: E402
from groups.models import EnforcedChannel, GroupAdmin, GroupChannel, ProtectedGroup  # noqa: E402


def register(token: str, api_url: str) -> BotInstance:
    """The bot, registered as runbot registers BOT_TOKEN (getMe against `api_url`)."""
    return register_bot(token, api_url=api_url, again=True)


def protect(bot: BotInstance, group, channel, admins) -> None:
    """`group` protected by `bot`, enforcing `channel`, with `admins` known and fresh."""
    row = ProtectedGroup.objects.create(bot=bot, chat_id=group.id, title=group.title)
    chan = EnforcedChannel.objects.create(
        bot=bot, chat_id=channel.id, title=channel.title, username=channel.username or ""
    )
    GroupChannel.objects.create(group=row, channel=chan)
    for admin in admins:
        GroupAdmin.objects.create(group=row, user_id=admin.id)
    ProtectedGroup.objects.filter(pk=row.pk).update(admins_refreshed_at=timezone.now())
