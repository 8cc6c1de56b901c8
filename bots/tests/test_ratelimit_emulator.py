"""The rate limiter on the wire: a real bot, the supervisor, and the emulator's 429s."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bots.locks import FileLocks
from bots.models import BotInstance
from bots.supervisor import RuntimeOptions, Supervisor
from bots.tests.runtime_support import close_db_threads, make_bot  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_db_threads"),
    # PTB's RetryAfter warns about its own int/timedelta switch when built.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]


async def pong(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("pong")


async def menu(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    button = InlineKeyboardButton("I've joined", callback_data="joined")
    await update.effective_message.reply_text("menu", reply_markup=InlineKeyboardMarkup([[button]]))


async def answer(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.callback_query.answer("ok")


def install(application: Application, _bot: BotInstance) -> None:
    application.add_handler(MessageHandler(filters.Regex("^ping$"), pong))
    application.add_handler(MessageHandler(filters.Regex("^menu$"), menu))
    application.add_handler(CallbackQueryHandler(answer))


@pytest.fixture
async def supervised(emulator, tmp_path):
    bot = emulator.create_bot(username="limited_bot")
    await sync_to_async(make_bot)(bot.token, username="limited_bot")
    supervisor = Supervisor(
        RuntimeOptions(
            install=install,
            allowed_updates=("message", "callback_query"),
            webhook_url="",
            locks=FileLocks(tmp_path),
            drain_timeout=5,
        )
    )
    stop = asyncio.Event()
    run = asyncio.create_task(supervisor.run(stop))
    yield bot
    stop.set()
    await asyncio.wait_for(run, 30)


def group_with(emu, bot, title: str) -> tuple[Any, Any]:
    owner = emu.create_user(f"Owner of {title}")
    group = emu.create_supergroup(title, creator=owner)
    emu.promote(group, bot, by=owner)
    return group, owner


async def test_a_429_storm_in_one_group_holds_neither_other_groups_nor_answers(
    emulator, supervised
):
    bot = supervised
    stormy, dana = group_with(emulator, bot, "Stormy")
    calm, erin = group_with(emulator, bot, "Calm")
    # A menu with a button, posted before the storm.
    emulator.send_message(calm, erin, "menu")
    posted = await emulator.wait_for_call("sendMessage", timeout=15, chat_id=calm.id, text="menu")

    # Telegram answers 429 to every message into the stormy group.
    emulator.fail("sendMessage", chat_id=stormy, error_code=429, retry_after=2, times=None)
    emulator.send_message(stormy, dana, "ping")
    await emulator.wait_for_call("sendMessage", timeout=15, chat_id=stormy.id, ok=False)
    since = len(emulator.calls)

    # Meanwhile the calm group is answered and a button press is answered.
    emulator.send_message(calm, erin, "ping")
    emulator.press_button(calm, posted.result["message_id"], erin, "joined")
    await emulator.wait_for_call("sendMessage", timeout=15, since=since, chat_id=calm.id)
    await emulator.wait_for_call("answerCallbackQuery", timeout=15, since=since)

    # The stormy group was not hammered: one try, then the pause Telegram asked for.
    assert len(emulator.calls_named("sendMessage", chat_id=stormy.id)) == 1
    # Once Telegram lets go, the held reply goes out: nothing was dropped.
    emulator.clear_faults()
    reply = await emulator.wait_for_call(
        "sendMessage", timeout=15, since=since, chat_id=stormy.id, ok=True
    )
    assert reply.params["text"] == "pong"


async def test_a_burst_above_thirty_a_second_never_trips_the_flood_limits(emulator, supervised):
    bot = supervised
    emulator.flood_limits = True
    people = [emulator.create_user(f"Burst {i}") for i in range(90)]
    since = len(emulator.calls)
    # Ninety people write to the bot at once: ninety replies, three seconds' budget.
    for person in people:
        emulator.send_message(bot, person, "ping")
    for person in people:
        await emulator.wait_for_call("sendMessage", timeout=30, since=since, chat_id=person.id)

    # Every reply went out, and Telegram never had to say 429.
    assert not [c for c in emulator.calls[since:] if c.error_code == 429]
    assert len(emulator.calls_named("sendMessage", ok=True)) >= 90
