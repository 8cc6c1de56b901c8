"""The supervisor against the Bot API emulator: many bots, added, disabled, refused, crashed.

These tests give the supervisor a small echo "engine" (it answers "pong" to
"ping"), so they exercise the runtime alone; test_supervisor_engine.py runs
the real engine through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bots.locks import FileLocks
from bots.models import BotInstance, BotStatus
from bots.supervisor import RuntimeOptions, Supervisor
from bots.tests.runtime_support import close_db_threads, eventually, make_bot  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_db_threads"),
]

ECHO_UPDATES = ("message", "callback_query")
# A well-formed token the emulator does not know: Telegram answers 401.
REFUSED_TOKEN = "7999999999:" + "R" * 35


async def pong(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("pong")


def echo_install(application: Application, _bot: BotInstance) -> None:
    application.add_handler(MessageHandler(filters.Regex("^ping$"), pong))


def options(tmp_path, **overrides: Any) -> RuntimeOptions:
    values: dict[str, Any] = {
        "install": echo_install,
        "allowed_updates": ECHO_UPDATES,
        "webhook_url": "",
        "locks": FileLocks(tmp_path / "locks"),
        "reconcile_interval": 0.2,
        "heartbeat_interval": 0.5,
        "drain_timeout": 10,
    }
    values.update(overrides)
    return RuntimeOptions(**values)


@pytest.fixture
async def running(tmp_path) -> AsyncIterator[Any]:
    """Start a supervisor's run loop; yields a function that starts one with options."""
    started: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    def start(**overrides: Any) -> Supervisor:
        supervisor = Supervisor(options(tmp_path, **overrides))
        stop = asyncio.Event()
        started.append((stop, asyncio.create_task(supervisor.run(stop))))
        return supervisor

    yield start
    for stop, task in started:
        stop.set()
        await asyncio.wait_for(task, 30)


async def status_of(bot: BotInstance) -> BotStatus | None:
    return await BotStatus.objects.filter(bot=bot).afirst()


async def has_state(bot: BotInstance, state: str) -> bool:
    status = await status_of(bot)
    return status is not None and status.state == state


async def ping(emu, bot) -> None:
    """Someone says ping in a group with `bot`; wait for its pong."""
    user = emu.create_user("Pinger")
    group = emu.create_supergroup(f"Group of {bot.username}", creator=user)
    emu.add_bot(group, bot, by=user)
    since = len(emu.calls)
    emu.send_message(group, user, "ping")
    await emu.wait_for_call("sendMessage", timeout=15, since=since, chat_id=group.id, text="pong")


async def test_it_runs_two_bots_and_one_refused_token_fails_only_that_bot(emulator, running):
    good = emulator.create_bot(username="good_bot")
    good_row = await sync_to_async(make_bot)(good.token, username="good_bot")
    bad_row = await sync_to_async(make_bot)(REFUSED_TOKEN, username="revoked_bot")
    running()

    # The good bot answers...
    await ping(emulator, good)
    await eventually(lambda: has_state(good_row, BotStatus.State.RUNNING))
    # ...and the refused one is marked failed, with the reason shown in admin.
    await eventually(lambda: has_state(bad_row, BotStatus.State.FAILED))
    status = await status_of(bad_row)
    assert "refused the token" in status.last_error
    assert REFUSED_TOKEN.split(":")[1] not in status.last_error


async def test_it_runs_several_bots_side_by_side(emulator, running):
    first, second = (
        emulator.create_bot(username="first_bot"),
        emulator.create_bot(username="second_bot"),
    )
    for bot in (first, second):
        await sync_to_async(make_bot)(bot.token, username=bot.username)
    running()

    await asyncio.gather(ping(emulator, first), ping(emulator, second))


async def test_a_bot_added_while_running_starts_and_a_disabled_one_stops(emulator, tmp_path):
    supervisor = Supervisor(options(tmp_path))
    # Nothing to run yet.
    assert await supervisor.reconcile() is False

    bot = emulator.create_bot(username="late_bot")
    row = await sync_to_async(make_bot)(bot.token, username="late_bot")
    # It should start the bot added in admin on its next pass.
    assert await supervisor.reconcile() is True
    await ping(emulator, bot)
    assert await supervisor.reconcile() is False

    # Disabled in admin: it stops and says so.
    await BotInstance.objects.filter(pk=row.pk).aupdate(is_active=False)
    assert await supervisor.reconcile() is True
    assert supervisor.runners == {}
    assert await has_state(row, BotStatus.State.STOPPED)

    # Re-enabled, then deleted outright: it starts, then stops without a trace.
    await BotInstance.objects.filter(pk=row.pk).aupdate(is_active=True)
    assert await supervisor.reconcile() is True
    await ping(emulator, bot)
    pk = row.pk
    await row.adelete()
    assert await supervisor.reconcile() is True
    assert supervisor.runners == {}
    assert not await BotStatus.objects.filter(bot_id=pk).aexists()
    await supervisor.shutdown()


async def test_a_re_tokened_bot_restarts_with_its_new_token(emulator, tmp_path):
    old = emulator.create_bot(username="old_token_bot")
    row = await sync_to_async(make_bot)(old.token, username="old_token_bot")
    supervisor = Supervisor(options(tmp_path))
    assert await supervisor.reconcile() is True
    await ping(emulator, old)

    # The owner revoked the token in BotFather and pasted the new one in admin.
    new = emulator.create_bot(username="new_token_bot")
    await sync_to_async(_set_token)(row.pk, new.token)
    assert await supervisor.reconcile() is True
    await ping(emulator, new)
    assert supervisor.runners[row.pk].fingerprint != row.token_fingerprint
    await supervisor.shutdown()


def _set_token(pk: int, token: str) -> None:
    # Telegram ids differ in the emulator; in life a re-token keeps the id.
    bot = BotInstance.objects.get(pk=pk)
    bot.set_token(token)
    bot.save()


async def test_a_refused_token_is_retried_once_it_changes(emulator, tmp_path):
    row = await sync_to_async(make_bot)(REFUSED_TOKEN, username="fixme_bot")
    supervisor = Supervisor(options(tmp_path))
    await supervisor.reconcile()
    await eventually(lambda: _reconciled_to(supervisor, row, BotStatus.State.FAILED))
    # It does not hammer Telegram with the refused token.
    refused_calls = len(emulator.calls_named("getMe"))
    assert await supervisor.reconcile() is False
    assert len(emulator.calls_named("getMe")) == refused_calls

    fixed = emulator.create_bot(username="fixme_bot")
    await sync_to_async(_set_token)(row.pk, fixed.token)
    assert await supervisor.reconcile() is True
    await ping(emulator, fixed)
    await supervisor.shutdown()


async def _reconciled_to(supervisor: Supervisor, row: BotInstance, state: str) -> bool:
    await supervisor.reconcile()
    return await has_state(row, state)


async def test_a_crashed_bot_restarts_with_backoff(emulator, tmp_path):
    bot = emulator.create_bot(username="flaky_bot")
    row = await sync_to_async(make_bot)(bot.token, username="flaky_bot")
    installs: list[int] = []

    def flaky_install(application: Application, instance: BotInstance) -> None:
        installs.append(instance.pk)
        if len(installs) == 1:
            raise RuntimeError("engine failed to start")
        echo_install(application, instance)

    supervisor = Supervisor(options(tmp_path, install=flaky_install))
    await supervisor.reconcile()
    # The crash is recorded with its reason...
    await eventually(lambda: _reconciled_to(supervisor, row, BotStatus.State.FAILED))
    assert "engine failed to start" in (await status_of(row)).last_error
    assert supervisor._backoff[row.pk].failures == 1
    # ...and the bot comes back once the backoff has passed.
    await eventually(lambda: _reconciled_to(supervisor, row, BotStatus.State.RUNNING))
    await ping(emulator, bot)
    assert len(installs) == 2
    await supervisor.shutdown()


async def test_the_heartbeat_counts_updates_and_the_final_one_says_stopped(emulator, tmp_path):
    bot = emulator.create_bot(username="counted_bot")
    row = await sync_to_async(make_bot)(bot.token, username="counted_bot")
    supervisor = Supervisor(options(tmp_path))
    stop = asyncio.Event()
    run = asyncio.create_task(supervisor.run(stop))
    await ping(emulator, bot)
    await ping(emulator, bot)

    stop.set()
    await asyncio.wait_for(run, 30)
    status = await status_of(row)
    # Each ping arrives with the bot's own my_chat_member update before it.
    assert status.state == BotStatus.State.STOPPED
    assert status.updates_handled >= 2
    assert status.host and status.started_at and status.heartbeat_at


async def test_only_the_lock_holder_polls_a_token(emulator, tmp_path):
    bot = emulator.create_bot(username="locked_bot")
    await sync_to_async(make_bot)(bot.token, username="locked_bot")
    holder = Supervisor(options(tmp_path))
    waiter = Supervisor(options(tmp_path))
    assert await holder.reconcile() is True

    # The second one finds the lock taken and runs nothing...
    assert await waiter.reconcile() is False
    assert waiter.runners == {}
    await ping(emulator, bot)

    # ...until the holder stops; then it takes over on its next pass.
    await holder.shutdown()
    await holder.locks.close()
    assert await waiter.reconcile() is True
    await ping(emulator, bot)
    await waiter.shutdown()


async def test_only_listed_bots_run_with_a_filter(emulator, running):
    wanted = emulator.create_bot(username="wanted_bot")
    other = emulator.create_bot(username="other_bot")
    for bot in (wanted, other):
        await sync_to_async(make_bot)(bot.token, username=bot.username)
    supervisor = running(bot_filter=lambda b: b.username == "wanted_bot")

    await ping(emulator, wanted)
    assert [r.bot.username for r in supervisor.runners.values()] == ["wanted_bot"]
    assert not emulator.calls_named("getMe", bot_id=other.id)


async def test_once_takes_what_is_pending_and_returns(emulator, tmp_path):
    from bots.models import BotCommand

    bot = emulator.create_bot(username="once_bot")
    row = await sync_to_async(make_bot)(bot.token, username="once_bot")
    user = emulator.create_user("Early")
    # Waiting before runbot starts: an update at Telegram and a dashboard command.
    emulator.send_message(bot, user, "ping")
    command = await BotCommand.objects.acreate(bot=row, kind="recheck", payload={"user_id": 1})

    async def recheck(cmd: BotCommand, _application: Application) -> dict:
        return {"checked": cmd.payload["user_id"]}

    supervisor = Supervisor(options(tmp_path, once=True, executors={"recheck": recheck}))
    # It returns by itself, with no stop event ever set.
    await asyncio.wait_for(supervisor.run(asyncio.Event()), 30)

    assert emulator.calls_named("sendMessage", chat_id=user.id, text="pong")
    await command.arefresh_from_db()
    assert command.status == BotCommand.Status.DONE and command.result == {"checked": 1}
    assert await has_state(row, BotStatus.State.STOPPED)


async def test_an_update_that_met_a_database_outage_is_handled_again(emulator, running):
    from django.db import OperationalError

    from bots import updatesource

    bot = emulator.create_bot(username="flaky_bot")
    await sync_to_async(make_bot)(bot.token, username="flaky_bot")
    attempts: list[int] = []

    async def flaky_pong(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        attempts.append(update.update_id)
        if len(attempts) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        await update.effective_message.reply_text("pong")

    def flaky_install(application: Application, _bot: BotInstance) -> None:
        application.add_handler(MessageHandler(filters.Regex("^ping$"), flaky_pong))

    original = updatesource.RETRY_FIRST_SECONDS
    updatesource.RETRY_FIRST_SECONDS = 0.1
    try:
        supervisor = running(install=flaky_install)
        await ping(emulator, bot)
    finally:
        updatesource.RETRY_FIRST_SECONDS = original
    # The same update twice: the first try met the outage, the second answered.
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    runner = next(iter(supervisor.runners.values()))

    async def journal_empty() -> bool:
        return runner.journal.pending == 0

    await eventually(journal_empty)


async def test_a_malformed_update_is_skipped_not_fatal(emulator, running):
    bot = emulator.create_bot(username="sturdy_bot")
    await sync_to_async(make_bot)(bot.token, username="sturdy_bot")
    supervisor = running()
    await ping(emulator, bot)
    runner = next(iter(supervisor.runners.values()))
    # An update PTB cannot build (a message without its chat) among good ones.
    assert await runner.consumer.take([{"update_id": 1, "message": {"message_id": 1}}]) == 1
    await ping(emulator, bot)


async def test_updates_numbered_below_the_journal_are_still_handled(emulator, running, settings):
    from bots.journal import UpdateJournal

    bot = emulator.create_bot(username="quiet_bot")
    await sync_to_async(make_bot)(bot.token, username="quiet_bot")
    # A journal from before a week of silence: Telegram then numbers updates afresh,
    # possibly below anything seen. Resuming "after the highest id" would skip them.
    old = UpdateJournal(settings.NEZUKO_SPOOL_DIR / "updates" / f"bot-{bot.id}.jsonl")
    old.open()
    old.append([], batch=[9_000_000_000])
    old.close()
    running()
    await ping(emulator, bot)
