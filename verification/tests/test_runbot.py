"""runbot, minimal form: register BOT_TOKEN, poll the active bots, stop on a signal."""

import asyncio
import logging
import os
import signal

import pytest
from asgiref.sync import sync_to_async
from django.core.management.base import CommandError
from django.db import connections

from bots.models import BotInstance
from verification import ALLOWED_UPDATES, runner
from verification.management.commands.runbot import Command, install_signal_handlers

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
    with pytest.raises(CommandError, match="rejected"):
        await Command().main(None, asyncio.Event())


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


async def test_run_bot_is_the_lifecycle_the_supervisor_calls(scene):
    bot = await sync_to_async(BotInstance)(username="nezuko_bot")
    bot.set_token(scene.bot.token)
    await bot.asave()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run_bot(bot, stop, api_url=scene.emulator.api_url))
    await scene.emulator.wait_for_call("getUpdates")
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert task.exception() is None
    await sync_to_async(connections.close_all)()


async def test_registering_the_same_bot_token_again_updates_its_row(scene):
    first = await runner.register_token(scene.bot.token)
    await BotInstance.objects.filter(pk=first.pk).aupdate(username="renamed_meanwhile")

    again = await runner.register_token(scene.bot.token)

    # One row, refreshed from getMe: a restart with BOT_TOKEN set must not fail.
    assert again.pk == first.pk
    assert await BotInstance.objects.acount() == 1
    assert (await BotInstance.objects.aget()).username == "nezuko_bot"
