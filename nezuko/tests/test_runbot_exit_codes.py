"""runbot's exit status is what systemd or Docker see: a failed start must not exit 0.

* It cannot listen on its port: EXIT_CANNOT_LISTEN (75, EX_TEMPFAIL), so a
  restart-on-failure policy tries again (the old process may still hold it).
* Telegram refused every bot's token at start-up: EXIT_CONFIGURATION (78,
  EX_CONFIG), which a unit can list in RestartPreventExitStatus=.
* No bot at all with the web application is not an error: admin is right there.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from asgiref.sync import sync_to_async
from django.core.management.base import CommandError

from bots.tests.runtime_support import Child, child_env, close_db_threads
from nezuko.management.commands.runbot import (
    EXIT_CANNOT_LISTEN,
    EXIT_CONFIGURATION,
    Command,
)
from tests.factories import fake_token, make_bot

__all__ = ["close_db_threads"]


async def test_it_exits_non_zero_when_its_port_is_taken(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = child_env(DATABASE_URL=f"sqlite:///{tmp_path / 'nezuko.sqlite3'}", REDIS_URL="",
                        BOT_TOKEN="")
        runbot = await Child.start("runbot", "--host", "127.0.0.1", "--port", str(port), env=env)
        try:
            code = await runbot.wait(within=60)
        finally:
            if runbot.process.returncode is None:
                await runbot.stop(9)
    logged = "".join(runbot.output)
    print(f"runbot on a busy port exited with {code}")
    # It should fail with the listen code and say which address.
    assert code == EXIT_CANNOT_LISTEN, logged
    assert f"127.0.0.1:{port}" in logged


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_db_threads")
async def test_it_exits_with_a_configuration_error_when_every_token_is_refused(
    emulator, settings
):
    settings.BOT_TOKEN = ""
    # Two bots in admin whose tokens Telegram does not know (revoked).
    for _ in range(2):
        await sync_to_async(make_bot)(token=fake_token())
    stop = asyncio.Event()

    with pytest.raises(CommandError, match="refused every bot") as refused:
        await asyncio.wait_for(Command().main(None, stop, wait_for_bots=True), timeout=60)

    # It should stop by itself with the configuration code, web or not.
    assert refused.value.returncode == EXIT_CONFIGURATION


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_db_threads")
async def test_one_good_bot_among_refused_ones_keeps_it_running(scene, settings):
    settings.BOT_TOKEN = ""
    await sync_to_async(make_bot)(token=fake_token())
    await sync_to_async(make_bot)(token=scene.bot.token, telegram_id=scene.bot.id)
    stop = asyncio.Event()
    main = asyncio.create_task(Command().main(None, stop))

    # It should keep polling with the good bot...
    await scene.emulator.wait_for_call("getUpdates")
    assert not main.done()
    # ...and exit cleanly when asked.
    stop.set()
    await asyncio.wait_for(main, timeout=30)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_db_threads")
async def test_a_refused_bot_token_is_a_configuration_error(emulator, settings):
    settings.BOT_TOKEN = fake_token()
    with pytest.raises(CommandError, match="rejected") as refused:
        await Command().main(None, asyncio.Event())
    assert refused.value.returncode == EXIT_CONFIGURATION


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_db_threads")
@pytest.mark.parametrize("error_code", [502, 429])
async def test_telegram_failing_at_start_is_a_temporary_failure_not_a_bad_token(
        emulator, settings, error_code):
    from nezuko.management.commands.runbot import EXIT_TEMPORARY

    bot = emulator.create_bot(username="blinking_bot")
    settings.BOT_TOKEN = bot.token
    emulator.fail("getMe", error_code=error_code, retry_after=3, times=None)
    with pytest.raises(CommandError, match="try again") as failed:
        await Command().main(None, asyncio.Event())
    # 78 would tell systemd never to restart: one blip at boot would keep it down.
    assert failed.value.returncode == EXIT_TEMPORARY
