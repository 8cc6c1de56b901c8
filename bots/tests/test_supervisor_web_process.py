"""`runbot` with web: daphne and the bots on one asyncio loop, in one real process.

This is the proof STYLE.md asks for before relying on daphne's `ready_callable`:
the supervisor scheduled there polls and answers while the same process
serves HTTP, and SIGTERM drains the bots and then stops the server.
The child runs on its own SQLite file, so this test needs no shared database.
"""

from __future__ import annotations

import socket

import aiohttp

from bots.tests.runtime_support import Child, child_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_runbot_serves_the_web_app_and_the_bots_in_one_process(scene, tmp_path):
    emu = scene.emulator
    env = child_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'nezuko.sqlite3'}",
        TELEGRAM_API_URL=emu.api_url,
        BOT_TOKEN=scene.bot.token,
        REDIS_URL="",
    )
    migrate = await Child.start("migrate", "--noinput", "-v0", env=env)
    assert await migrate.wait() == 0, "".join(migrate.output)
    port = free_port()
    runbot = await Child.start("runbot", "--host", "127.0.0.1", "--port", str(port), env=env)
    try:
        await runbot.wait_for_output("bot.running", within=60)
        # The bot answers...
        emu.send_message(scene.bot, scene.carol, "/help")
        await emu.wait_for_call("sendMessage", timeout=30, chat_id=scene.carol.id)
        # ...while the same process serves HTTP: health, and the bot's metrics.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert 'nezuko_bot_up{bot="nezuko_bot"} 1.0' in await response.text()

        # SIGTERM: the bots drain, then the web server stops, and the exit is clean.
        assert await runbot.stop() == 0
        logged = "".join(runbot.output)
        assert "runbot.stopped" in logged
        assert scene.bot.token.split(":")[1] not in logged
    finally:
        if runbot.process.returncode is None:
            await runbot.stop(9)
