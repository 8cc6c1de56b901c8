"""/login in a private chat, over the real PTB stack and the emulator."""

import asyncio
import re

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from bots.locks import FileLocks
from bots.testing import supervised
from dashboard.models import TelegramAccount

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]


async def ask_for_login(emulator, bot, row, tmp_path, language_code: str = "en"):
    """Erin sends /login to `bot` as runbot runs it; returns its answer's call."""
    from nezuko.runtime import runtime_options

    erin = emulator.create_user("Erin", username="erin", language_code=language_code)
    # What runbot runs: the composition root adds /login to every bot.
    options = runtime_options()
    options.locks, options.webhook_url = FileLocks(tmp_path / "locks"), ""
    async with supervised(options, row.pk):
        emulator.send_message(bot, erin, "/login")
        return erin, await emulator.wait_for_call("sendMessage", chat_id=erin.id)


async def test_login_in_a_private_chat_answers_with_a_one_time_link(
    emulator, settings, tmp_path
):
    from bots.tests.runtime_support import make_bot

    settings.DASHBOARD_URL = "http://dashboard.test"
    bot = emulator.create_bot(username="nezuko_bot")
    row = await sync_to_async(make_bot)(bot.token, username="nezuko_bot")
    erin, call = await ask_for_login(emulator, bot, row, tmp_path)

    # It should answer Erin privately with a link to this dashboard.
    match = re.search(r"http://dashboard\.test(/login/link/[\w-]+/)", call.params["text"])
    assert match, call.params["text"]
    client = Client()
    response = await sync_to_async(client.post)(match.group(1))
    assert response.status_code == 302
    account = await TelegramAccount.objects.aget(telegram_id=erin.id)
    assert account.username == "erin"
    # The link is spent.
    assert (await sync_to_async(Client().post)(match.group(1))).status_code == 403


async def test_runbots_supervisor_answers_login_for_every_bot_it_runs(emulator, settings, tmp_path):
    from bots.locks import FileLocks
    from bots.supervisor import RuntimeOptions, Supervisor
    from bots.tests.runtime_support import make_bot
    from dashboard import telegram
    from verification import ALLOWED_UPDATES
    from verification.handlers import install

    settings.DASHBOARD_URL = "http://dashboard.test"
    bot = emulator.create_bot(username="nezuko_bot")
    await sync_to_async(make_bot)(bot.token, username="nezuko_bot")
    erin = emulator.create_user("Erin", username="erin")
    # The engine's install and the dashboard's extension, as the composition root passes it.
    supervisor = Supervisor(RuntimeOptions(
        install=install, allowed_updates=ALLOWED_UPDATES, webhook_url="",
        extensions=[telegram.install],
        locks=FileLocks(tmp_path / "locks"), reconcile_interval=0.2, drain_timeout=10,
    ))
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        emulator.send_message(bot, erin, "/login")
        call = await emulator.wait_for_call("sendMessage", timeout=15, chat_id=erin.id)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    assert "http://dashboard.test/login/link/" in call.params["text"]


async def test_a_bot_an_owner_added_hands_out_no_login_link(emulator, settings, tmp_path):
    from django.contrib.auth.models import User

    from bots.models import BotInstance
    from bots.tests.runtime_support import make_bot
    bot = emulator.create_bot(username="owners_bot")
    row = await sync_to_async(make_bot)(bot.token, username="owners_bot")
    # Mallory added this bot on the dashboard, so she holds its token and could read
    # whatever it sends: a login link from it would be hers to use.
    mallory = await User.objects.acreate(username="mallory")
    await BotInstance.objects.filter(pk=row.pk).aupdate(owner=mallory)
    _, call = await ask_for_login(emulator, bot, row, tmp_path)
    assert "/login/link/" not in call.params["text"]
    assert "cannot log you in" in call.params["text"]


async def test_the_login_link_comes_in_the_persons_telegram_language(emulator, settings,
                                                                   tmp_path):
    from django.template.loader import render_to_string
    from django.utils import translation

    from bots.tests.runtime_support import make_bot

    settings.DASHBOARD_URL = "http://dashboard.test"
    bot = emulator.create_bot(username="nezuko_bot")
    row = await sync_to_async(make_bot)(bot.token, username="nezuko_bot")
    _, call = await ask_for_login(emulator, bot, row, tmp_path, language_code="uk")
    url = re.search(r"http://dashboard\.test/login/link/[\w-]+/", call.params["text"]).group(0)
    # The same message as the Ukrainian catalog words it, around this link.
    with translation.override("uk"):
        expected = render_to_string("dashboard/telegram/login.html", {"name": "Erin", "url": url})
    assert call.params["text"] == expected
