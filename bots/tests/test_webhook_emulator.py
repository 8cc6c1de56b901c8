"""Webhook mode end to end: setWebhook per bot, the emulator POSTs, nezuko.asgi answers.

The ASGI application is served by a small aiohttp adapter (daphne needs its
own reactor loop; runbot's daphne serving is covered by test_runbot_process).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from asgiref.sync import sync_to_async
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bots import webhook
from bots.locks import FileLocks
from bots.models import BotInstance
from bots.supervisor import RuntimeOptions, Supervisor
from bots.tests.runtime_support import close_db_threads, make_bot  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_db_threads"),
]


def serve_asgi(app: Any) -> web.Application:
    """Hand every aiohttp request to an ASGI application, as an ASGI server would."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": request.path,
            "raw_path": request.path.encode(),
            "query_string": request.query_string.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.items()],
            "server": ("127.0.0.1", 0),
            "client": ("127.0.0.1", 0),
        }
        answer: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await app(scope, receive, send)
        return web.Response(status=answer["status"], body=answer["body"])

    server = web.Application()
    server.router.add_route("*", "/{tail:.*}", handle)
    return server


@pytest.fixture
def receivers() -> webhook.WebhookReceivers:
    """One table for the served route and the supervisor's bots, as runbot shares it."""
    return webhook.WebhookReceivers()


@pytest.fixture
async def site(receivers) -> Any:
    from nezuko.asgi import build_application

    runner = web.AppRunner(serve_asgi(build_application(receivers)), access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def pong(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("pong")


def install(application: Application, _bot: BotInstance) -> None:
    application.add_handler(MessageHandler(filters.Regex("^ping"), pong))


@pytest.fixture
async def webhook_bot(emulator, site, receivers, settings, tmp_path):
    settings.WEBHOOK_URL = site
    settings.WEBHOOK_SECRET = "the-operators-webhook-secret"
    bot = emulator.create_bot(username="hooked_bot")
    await sync_to_async(make_bot)(bot.token, username="hooked_bot")
    supervisor = Supervisor(
        RuntimeOptions(
            install=install,
            allowed_updates=("message", "callback_query"),
            webhook_receivers=receivers,
            locks=FileLocks(tmp_path),
            drain_timeout=5,
        )
    )
    stop = asyncio.Event()
    run = asyncio.create_task(supervisor.run(stop))
    await emulator.wait_for_call("setWebhook", timeout=15, bot_id=bot.id)
    yield bot
    stop.set()
    await asyncio.wait_for(run, 30)


async def test_it_sets_a_per_bot_webhook_and_handles_what_telegram_posts(emulator, webhook_bot):
    call = emulator.calls_named("setWebhook", bot_id=webhook_bot.id)[0]
    # One path and one secret per bot; exactly the update types asked for.
    assert call.params["url"].endswith(webhook.webhook_path(webhook_bot.id))
    assert call.params["secret_token"] == webhook.webhook_secret(webhook_bot.id)
    assert sorted(call.params["allowed_updates"]) == ["callback_query", "message"]
    # Admin shows how the bot gets its updates.
    row = await BotInstance.objects.aget(telegram_id=webhook_bot.id)
    assert row.update_mode == BotInstance.UpdateMode.WEBHOOK

    user = emulator.create_user("Hooked")
    emulator.send_message(webhook_bot, user, "ping")
    await emulator.wait_for_call("sendMessage", timeout=15, chat_id=user.id, text="pong")


async def test_a_wrong_secret_is_refused_until_it_is_right_and_nothing_is_lost(
    emulator, webhook_bot, settings
):
    user = emulator.create_user("Patient")
    # The operator rotates WEBHOOK_SECRET here; Telegram still sends the old one.
    settings.WEBHOOK_SECRET = "rotated-but-not-yet-registered"
    since = len(emulator.calls)
    emulator.send_message(webhook_bot, user, "ping 1")
    info = await _wait_for_webhook_error(emulator, webhook_bot)
    # It should refuse with 403 and handle nothing...
    assert "403" in info
    assert not emulator.calls_named("sendMessage", chat_id=user.id)

    # ...and once the secrets agree again, Telegram's retry is handled.
    settings.WEBHOOK_SECRET = "the-operators-webhook-secret"
    await emulator.wait_for_call("sendMessage", timeout=15, since=since, chat_id=user.id)


async def _wait_for_webhook_error(emulator, bot) -> str:
    inbox = emulator.inboxes[bot.id]
    async with asyncio.timeout(15):
        while inbox.webhook is None or not inbox.webhook.last_error_message:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return inbox.webhook.last_error_message


async def test_requests_without_or_with_a_wrong_secret_get_403(webhook_bot, site):
    url = f"{site}{webhook.webhook_path(webhook_bot.id)}"
    body = {
        "update_id": 1,
        "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}},
    }
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == 403
        # With the right secret, a body that is not an update is a 400, never a 500.
        right = {"X-Telegram-Bot-Api-Secret-Token": webhook.webhook_secret(webhook_bot.id)}
        async with http.post(url, data=b"{oops", headers=right) as response:
            assert response.status == 400
