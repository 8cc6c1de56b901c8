"""runbot, minimal form: register BOT_TOKEN, poll the active bots, stop on a signal."""

import asyncio
import logging
import os
import signal

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from bots.models import BotInstance
from nezuko.management.commands.runbot import (
    Command,
    install_signal_handlers,
    refuse_pins_on_the_bus,
)
from verification import ALLOWED_UPDATES

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_registers_bot_token_and_polls_for_exactly_the_engine_updates(
    scene, settings
):
    settings.BOT_TOKEN = scene.bot.token
    stop = asyncio.Event()
    main = asyncio.create_task(Command().main(None, stop))
    # It should validate the token with getMe, then long-poll with the six update types.
    await scene.emulator.wait_for_call("getMe")
    poll = await scene.emulator.wait_for_call("getUpdates")
    assert sorted(poll.params["allowed_updates"]) == sorted(ALLOWED_UPDATES)
    bot = await BotInstance.objects.aget(telegram_id=scene.bot.id)
    assert bot.username == "nezuko_bot" and bot.token == scene.bot.token
    # It should answer /start in private while running...
    scene.emulator.send_message(scene.bot, scene.carol, "/start")
    await scene.emulator.wait_for_call("sendMessage", chat_id=scene.carol.id)
    # ...and stop cleanly when asked.
    stop.set()
    await asyncio.wait_for(main, timeout=30)


async def test_it_refuses_a_token_telegram_rejects(scene, settings):
    settings.BOT_TOKEN = "123456:AAF" + "x" * 32
    with pytest.raises(CommandError, match="BOT_TOKEN: Telegram rejected") as refused:
        await Command().main(None, asyncio.Event())
    assert "x" * 32 not in str(refused.value)
    assert not await BotInstance.objects.aexists()


async def test_it_says_so_when_there_is_no_bot(emulator, settings):
    settings.BOT_TOKEN = ""
    with pytest.raises(CommandError, match="No active bot"):
        await Command().main(None, asyncio.Event())


async def test_sigterm_only_sets_the_stop_event():
    stop = asyncio.Event()
    installed = install_signal_handlers(stop)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), timeout=5)
    finally:
        loop = asyncio.get_running_loop()
        for sig in installed:
            loop.remove_signal_handler(sig)
    assert stop.is_set()


async def test_it_logs_each_update_and_never_the_token(scene, settings, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    settings.BOT_TOKEN = scene.bot.token
    stop = asyncio.Event()
    main = asyncio.create_task(Command().main(None, stop))
    await scene.emulator.wait_for_call("getUpdates")
    scene.emulator.send_message(scene.bot, scene.carol, "/help")
    await scene.emulator.wait_for_call("sendMessage", chat_id=scene.carol.id)
    stop.set()
    await main
    captured = capsys.readouterr()
    secret = scene.bot.token.split(":")[1]
    logged = captured.out + captured.err + caplog.text
    assert "update.handled" in caplog.text
    assert secret not in logged


async def test_a_restart_with_the_same_bot_token_updates_its_row(scene, settings):
    settings.BOT_TOKEN = scene.bot.token
    stopped = asyncio.Event()
    stopped.set()  # register, start and drain at once: a restart's start-up is what counts
    await Command().main(None, stopped)
    first = await BotInstance.objects.aget()
    await BotInstance.objects.filter(pk=first.pk).aupdate(username="renamed_meanwhile")

    await Command().main(None, stopped)

    # One row, refreshed from getMe (bots.registration): a restart must not fail.
    again = await BotInstance.objects.aget()
    assert again.pk == first.pk and again.username == "nezuko_bot"
    assert len(scene.emulator.calls_named("getMe")) == 2
    await sync_to_async(connections.close_all)()


def test_pinning_bots_on_the_update_bus_is_a_clear_start_up_error(settings):
    """On the bus every process takes a share of every bot: a pinned one would be given
    partitions of bots it does not run. Refused before anything starts (78)."""
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    settings.NEZUKO_UPDATE_BUS = "redis"  # what an empty value resolves to with REDIS_URL
    with pytest.raises(CommandError, match="NEZUKO_UPDATE_BUS=off to pin") as refused:
        call_command("runbot", "--bot", "@pinned_bot", "--no-web")
    assert refused.value.returncode == 78


def test_pinning_bots_off_the_bus_is_not_refused(settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    settings.NEZUKO_UPDATE_BUS = "off"
    refuse_pins_on_the_bus(["@pinned_bot"], once=False)  # returns: nothing to refuse
    settings.NEZUKO_UPDATE_BUS = "redis"
    refuse_pins_on_the_bus(["@pinned_bot"], once=True)  # --once never uses the bus
