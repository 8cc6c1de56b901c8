"""Webhook delivery: POSTs with the secret header, in order, re-sent while the hook fails."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram.error import Conflict

from bots.testing import Scene


class Receiver:
    """A webhook endpoint on a free port that fails the first `failures` deliveries."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[str | None, dict]] = []
        self.attempts = 0
        self.arrived: asyncio.Queue[dict] = asyncio.Queue()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            return web.Response(status=500)
        body = json.loads(await request.text())
        self.received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), body))
        await self.arrived.put(body)
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"
    yield hook
    await runner.cleanup()


async def test_updates_are_posted_with_the_secret_header(scene: Scene, receiver: Receiver) -> None:
    async with scene.ptb_bot() as bot:
        await bot.set_webhook(
            receiver.url,
            secret_token="s3cret",
            allowed_updates=["message", "chat_member"],
            drop_pending_updates=True,
        )
        scene.emulator.send_message(scene.group, scene.bob, "hello")
        body = await asyncio.wait_for(receiver.arrived.get(), 5)
        # While the webhook is set, polling is refused as in Telegram.
        with pytest.raises(Conflict):
            await bot.get_updates()
    assert body["message"]["text"] == "hello"
    assert receiver.received[0][0] == "s3cret"


async def test_a_failing_webhook_gets_the_update_again(scene: Scene, receiver: Receiver) -> None:
    receiver.failures = 2
    async with scene.ptb_bot() as bot:
        await bot.set_webhook(receiver.url, secret_token="s3cret", drop_pending_updates=True)
        scene.emulator.send_message(scene.group, scene.bob, "first")
        scene.emulator.send_message(scene.group, scene.bob, "second")
        first = await asyncio.wait_for(receiver.arrived.get(), 5)
        second = await asyncio.wait_for(receiver.arrived.get(), 5)
        info = await bot.get_webhook_info()
    # Two failed attempts, then both updates in order; the error shows in getWebhookInfo.
    assert receiver.attempts == 4
    assert [first["message"]["text"], second["message"]["text"]] == ["first", "second"]
    assert second["update_id"] == first["update_id"] + 1
    assert info.pending_update_count == 0
    assert "500" in info.last_error_message


async def test_deleting_the_webhook_returns_to_polling(scene: Scene, receiver: Receiver) -> None:
    async with scene.ptb_bot() as bot:
        await bot.set_webhook(receiver.url, drop_pending_updates=True)
        await bot.delete_webhook()
        scene.emulator.send_message(scene.group, scene.bob, "polled")
        updates = await bot.get_updates()
    assert [u.message.text for u in updates] == ["polled"]
    assert receiver.received == []
