"""The standalone command and its JSON control API, driven the way a script would."""

from __future__ import annotations

import asyncio
from io import StringIO
from typing import Any

import httpx
import pytest
from telegram import Bot
from telegram.error import NetworkError

from bots.emulator import TelegramEmulator
from bots.management.commands.telegram_emulator import Command


async def control(client: httpx.AsyncClient, emu: TelegramEmulator, path: str, **body: Any) -> Any:
    answer = await client.post(f"{emu.api_url}/_emulator{path}", json=body)
    data = answer.json()
    assert data["ok"], data
    return data["result"]


async def test_a_script_builds_a_world_and_acts_in_it(emulator: TelegramEmulator) -> None:
    async with httpx.AsyncClient() as client:
        bot = await control(client, emulator, "/bots", username="demo_bot")
        alice = await control(client, emulator, "/users", first_name="Alice", username="alice")
        carol = await control(client, emulator, "/users", first_name="Carol")
        group = await control(client, emulator, "/supergroups", title="Cats", creator=alice["id"])
        await control(
            client,
            emulator,
            "/act",
            action="promote",
            chat=group["id"],
            who=bot["id"],
            by=alice["id"],
            can_restrict_members=True,
        )
        await control(client, emulator, "/act", action="join", chat=group["id"], user=carol["id"])
        sent = await control(
            client,
            emulator,
            "/act",
            action="send_message",
            chat=group["id"],
            user=carol["id"],
            text="hello",
        )
        state = (await client.get(f"{emulator.api_url}/_emulator/state")).json()["result"]
        member = (
            await client.get(
                f"{emulator.api_url}/_emulator/chats/{group['id']}/members/{carol['id']}"
            )
        ).json()["result"]
    # The bot sees what the script did, through the Bot API.
    async with Bot(bot["token"], base_url=f"{emulator.api_url}/bot") as ptb:
        updates = await ptb.get_updates()
    assert updates[-1].message.text == "hello" and sent["text"] == "hello"
    assert member["status"] == "member"
    # Listings never show tokens.
    assert "token" not in str(state["bots"])


async def test_mistakes_are_400_with_a_reason(emulator: TelegramEmulator) -> None:
    async with httpx.AsyncClient() as client:
        unknown = await client.post(f"{emulator.api_url}/_emulator/act", json={"action": "nuke"})
        missing = await client.post(
            f"{emulator.api_url}/_emulator/act", json={"action": "join", "chat": -1}
        )
        not_json = await client.post(f"{emulator.api_url}/_emulator/users", content=b"{")
    assert unknown.status_code == missing.status_code == not_json.status_code == 400
    assert "action must be one of" in unknown.json()["error"]
    assert not_json.json() == {"ok": False, "error": "the body must be a JSON object"}


async def test_faults_and_calls_over_the_control_api(emulator: TelegramEmulator) -> None:
    bot_user = emulator.create_bot()
    bot = Bot(bot_user.token, base_url=f"{emulator.api_url}/bot")
    async with httpx.AsyncClient() as client:
        await control(client, emulator, "/faults", method="getMe", error_code=500)
        with pytest.raises(NetworkError):
            await bot.initialize()
        await bot.initialize()
        calls = (await client.get(f"{emulator.api_url}/_emulator/calls?method=getMe")).json()
    await bot.shutdown()
    # The injected failure hit the first getMe only.
    assert [c["error_code"] for c in calls["result"]] == [500, None]


async def test_the_command_prints_the_url_to_use_and_stops_cleanly() -> None:
    out = StringIO()
    command = Command(stdout=out)
    stop = asyncio.Event()
    options = {
        "host": "127.0.0.1",
        "port": 0,
        "bot_token": "",
        "bot_username": "nezuko_bot",
        "demo": True,
        "flood_limits": False,
    }
    serving = asyncio.create_task(command.serve(options, stop))
    await asyncio.wait_for(command.ready.wait(), 5)
    emu = command.emulator
    token = next(iter(emu.bots_by_token))
    async with Bot(token, base_url=f"{emu.api_url}/bot") as bot:
        me = await bot.get_me()
    stop.set()
    await asyncio.wait_for(serving, 5)
    printed = out.getvalue()
    assert f"TELEGRAM_API_URL={emu.api_url}" in printed
    assert '"carol"' in printed and me.username == "nezuko_bot"


async def test_recorded_calls_hide_the_webhook_secret(emulator: TelegramEmulator) -> None:
    bot_user = emulator.create_bot()
    async with Bot(bot_user.token, base_url=f"{emulator.api_url}/bot") as bot:
        await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="do-not-show")
        await bot.delete_webhook()
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{emulator.api_url}/_emulator/calls?method=setWebhook")
    assert "do-not-show" not in answer.text
    assert answer.json()["result"][0]["params"]["secret_token"] == "***"


async def test_a_person_can_be_made_with_their_apps_language(emulator: TelegramEmulator) -> None:
    """Trying Nezuko's languages by hand needs people whose apps speak them."""
    async with httpx.AsyncClient() as client:
        ana = await control(client, emulator, "/users", first_name="Ana", language_code="es")
        bob = await control(client, emulator, "/users", first_name="Bob")
    assert ana["language_code"] == "es"
    assert emulator.users[ana["id"]].language_code == "es"
    assert bob["language_code"] == "en"
