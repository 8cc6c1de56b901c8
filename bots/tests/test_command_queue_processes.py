"""Dashboard commands with two processes claiming from one PostgreSQL: each runs once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from bots.models import BotCommand
from bots.tests.runtime_support import (
    child_env,
    close_db_threads,  # noqa: F401
    database_url,
    make_bot,
    postgres_only,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_db_threads"),
]

# Each child runs the real CommandQueue with an executor that notes every run.
CHILD = """
import asyncio, os, sys
import django
django.setup()
from bots.command_queue import CommandQueue

log_path, bot_pk = sys.argv[1], int(sys.argv[2])

async def recheck(command, application):
    with open(log_path, "a") as log:
        log.write(f"{command.pk} {os.getpid()}\\n")
    await asyncio.sleep(0.005)  # stands in for a Telegram call
    return {"pid": os.getpid()}

async def main():
    queue = CommandQueue(bot_pk, None, {"recheck": recheck})
    print("ready", flush=True)
    sys.stdin.readline()
    print("ran", await queue.run_pending(limit=10_000), flush=True)

asyncio.run(main())
"""


@postgres_only
async def test_two_processes_run_each_command_exactly_once(tmp_path: Path):
    bot = await sync_to_async(make_bot)("7000000009:" + "Q" * 35, username="queued_bot")
    commands = await sync_to_async(BotCommand.objects.bulk_create)(
        [BotCommand(bot=bot, kind="recheck", payload={"user_id": i}) for i in range(120)]
    )
    log = tmp_path / "runs.log"
    env = child_env(
        DATABASE_URL=database_url(), DJANGO_SETTINGS_MODULE="nezuko.settings", LOG_LEVEL="WARNING"
    )
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, str(log), str(bot.pk),
            cwd=settings.BASE_DIR, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]  # fmt: skip
    # Both are connected and ready before either starts claiming.
    for child in children:
        assert (await asyncio.wait_for(child.stdout.readline(), 60)).strip() == b"ready"
    for child in children:
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    outputs = [await asyncio.wait_for(child.communicate(), 120) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs

    runs = [line.split() for line in log.read_text().splitlines()]
    # Every command ran once: no command twice, none left out.
    assert sorted(int(pk) for pk, _pid in runs) == sorted(c.pk for c in commands)
    statuses = {
        status
        async for status in BotCommand.objects.filter(bot=bot).values_list("status", flat=True)
    }
    assert statuses == {BotCommand.Status.DONE}
