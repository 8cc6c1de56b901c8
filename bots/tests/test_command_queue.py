"""Dashboard-to-bot commands: claimed once, run through the engine's executor, result kept."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from bots.application import build_application
from bots.command_queue import CommandQueue, claim_next, fail_stale
from bots.models import BotCommand
from bots.tests.runtime_support import close_db_threads, make_bot, postgres_only  # noqa: F401

TOKEN = "7000000001:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


pytestmark = pytest.mark.usefixtures("close_db_threads")


@pytest.fixture
def bot(db):
    return make_bot(TOKEN, username="nezuko_bot")


def queue_for(bot, executors) -> CommandQueue:
    # The executors get the bot's Application; nothing here calls Telegram.
    return CommandQueue(bot.pk, build_application(TOKEN, api_url="http://127.0.0.1:9"), executors)


class Recorder:
    def __init__(self) -> None:
        self.ran: list[int] = []

    async def unmute(self, command: BotCommand, _application: Any) -> dict[str, Any]:
        self.ran.append(command.pk)
        return {"unmuted": command.payload["user_id"]}


@pytest.mark.django_db(transaction=True)
async def test_it_runs_a_pending_command_and_records_the_result(bot):
    recorder = Recorder()
    command = await BotCommand.objects.acreate(
        bot=bot, kind=BotCommand.Kind.UNMUTE, payload={"user_id": 42}
    )
    queue = queue_for(bot, {BotCommand.Kind.UNMUTE: recorder.unmute})

    assert await queue.run_one() is True
    # Nothing is left to run.
    assert await queue.run_one() is False

    await command.arefresh_from_db()
    assert recorder.ran == [command.pk]
    assert command.status == BotCommand.Status.DONE
    assert command.result == {"unmuted": 42}
    assert command.started_at and command.finished_at


@pytest.mark.django_db(transaction=True)
async def test_it_runs_commands_oldest_first_and_only_its_own_bots(bot):
    other = await _other_bot()
    recorder = Recorder()
    first = await BotCommand.objects.acreate(bot=bot, kind="unmute", payload={"user_id": 1})
    await BotCommand.objects.acreate(bot=other, kind="unmute", payload={"user_id": 2})
    second = await BotCommand.objects.acreate(bot=bot, kind="unmute", payload={"user_id": 3})

    ran = await queue_for(bot, {"unmute": recorder.unmute}).run_pending()

    assert ran == 2
    assert recorder.ran == [first.pk, second.pk]


@pytest.mark.django_db(transaction=True)
async def test_a_failing_executor_marks_the_command_failed_with_the_reason(bot):
    async def ban(_command: BotCommand, _application: Any) -> None:
        raise RuntimeError("Not enough rights to ban")

    command = await BotCommand.objects.acreate(bot=bot, kind=BotCommand.Kind.BAN)
    assert await queue_for(bot, {BotCommand.Kind.BAN: ban}).run_one() is True

    await command.arefresh_from_db()
    assert command.status == BotCommand.Status.FAILED
    assert command.error == "RuntimeError: Not enough rights to ban"


@pytest.mark.django_db(transaction=True)
async def test_a_kind_without_executor_waits_for_a_runner_that_has_one(bot):
    recorder = Recorder()
    warm = await BotCommand.objects.acreate(bot=bot, kind=BotCommand.Kind.WARM_CACHE)
    unmute = await BotCommand.objects.acreate(bot=bot, kind="unmute", payload={"user_id": 5})

    assert await queue_for(bot, {"unmute": recorder.unmute}).run_pending() == 1

    await warm.arefresh_from_db()
    await unmute.arefresh_from_db()
    assert (warm.status, unmute.status) == (BotCommand.Status.PENDING, BotCommand.Status.DONE)


@pytest.mark.django_db
def test_a_command_already_claimed_is_not_claimed_again(bot):
    command = BotCommand.objects.create(bot=bot, kind=BotCommand.Kind.UNBAN)
    claimed = claim_next(bot.pk)

    assert claimed is not None and claimed.pk == command.pk
    assert claimed.status == BotCommand.Status.RUNNING
    # A second runner finds nothing: the row is RUNNING now.
    assert claim_next(bot.pk) is None


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_on_postgresql_claim_each_command_once(bot):
    commands = BotCommand.objects.bulk_create(
        [BotCommand(bot=bot, kind=BotCommand.Kind.RECHECK) for _ in range(60)]
    )
    claimed: list[list[int]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def claimer(index: int) -> None:
        start.wait()
        try:
            while (command := claim_next(bot.pk)) is not None:
                claimed[index].append(command.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Every command was claimed by exactly one of the four.
    everything = [pk for pks in claimed for pk in pks]
    assert sorted(everything) == sorted(c.pk for c in commands)


async def _other_bot():
    from asgiref.sync import sync_to_async

    return await sync_to_async(make_bot)(
        "7000000002:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", username="other_bot"
    )


def test_a_command_a_dead_runbot_left_running_is_failed_not_rerun(bot):
    other = make_bot("7000000002:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", username="other_bot")
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    orphan = BotCommand.objects.create(bot=bot, kind="ban", status="running", started_at=long_ago)
    busy = BotCommand.objects.create(bot=bot, kind="ban", status="running",
                                     started_at=timezone.now())
    elsewhere = BotCommand.objects.create(bot=other, kind="ban", status="running",
                                          started_at=long_ago)

    assert fail_stale(bot.pk, datetime.timedelta(minutes=15)) == 1

    # Only this bot's old command fails, saying why; nothing is put back to run twice.
    orphan.refresh_from_db()
    assert orphan.status == "failed" and "not retried" in orphan.error
    assert orphan.finished_at is not None
    busy.refresh_from_db()
    elsewhere.refresh_from_db()
    assert busy.status == "running" and elsewhere.status == "running"
    assert not BotCommand.objects.filter(status="pending").exists()
