"""`runbot` with web: daphne and the bots on one asyncio loop, in one real process.

This is the proof STYLE.md asks for before relying on daphne's `ready_callable`:
the supervisor scheduled there polls and answers while the same process
serves HTTP, and SIGTERM drains the bots and then stops the server.
The child runs on its own SQLite file, so this test needs no shared database.
"""

from __future__ import annotations

import aiohttp

from bots.tests.runtime_support import web_runbot


async def test_runbot_serves_the_web_app_and_the_bots_in_one_process(scene, tmp_path):
    emu = scene.emulator
    async with web_runbot(scene, tmp_path) as (runbot, port):
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
