"""Run the Telegram Bot API emulator standalone, for the demo and for scripts.

    manage.py telegram_emulator --port 8081 --demo

prints the TELEGRAM_API_URL to give `runbot` and serves until SIGINT/SIGTERM.
Scripts drive it over its JSON control API (docs/emulator.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from bots.emulator import TelegramEmulator
from bots.emulator.scene import make_scene


class Command(BaseCommand):
    help = "Serve the Telegram Bot API emulator on 127.0.0.1 (for the demo, scripts, benchmarks)."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ready = asyncio.Event()  # set once the emulator is listening (for tests)
        self.emulator: TelegramEmulator | None = None

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8081)
        parser.add_argument(
            "--bot-token",
            default=os.environ.get("BOT_TOKEN", ""),
            help="Register a bot with this token (default: $BOT_TOKEN, else a new one).",
        )
        parser.add_argument("--bot-username", default="nezuko_bot")
        parser.add_argument(
            "--demo",
            action="store_true",
            help="Create alice, bob, carol, a group and a channel with the bot as admin.",
        )
        parser.add_argument(
            "--flood-limits", action="store_true", help="Answer 429 past Telegram's limits."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            asyncio.run(self.serve(options))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from None

    async def serve(self, options: dict[str, Any], stop: asyncio.Event | None = None) -> None:
        """Serve until `stop` is set (by SIGINT/SIGTERM when not given)."""
        emu = TelegramEmulator()
        emu.flood_limits = options["flood_limits"]
        given = options["bot_token"]
        if given and ":" not in given:
            raise CommandError("--bot-token must look like <bot id>:<secret>")
        if options["demo"]:
            scene = make_scene(emu)
            bot = scene.bot
            if given:
                # The demo's bot takes the token runbot was configured with.
                emu.bots_by_token[given] = emu.bots_by_token.pop(bot.token or "")
                bot.token = given
        else:
            bot = emu.create_bot(options["bot_username"], token=given or None)
        url = await emu.start(options["host"], options["port"])
        self.stdout.write(f"Telegram Bot API emulator listening on {url}")
        self.stdout.write(f"TELEGRAM_API_URL={url}")
        if not given:
            # A token minted here works only against this emulator, so it may be shown.
            self.stdout.write(f"BOT_TOKEN={bot.token}  (emulator-only token)")
        self.stdout.write(f"Control API: {url}/_emulator/state")
        if options["demo"]:
            self.stdout.write(json.dumps(_cast(emu), indent=2))
        self.emulator = emu
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
        self.ready.set()
        try:
            await stop.wait()
        finally:
            await emu.stop()
            self.stdout.write("Emulator stopped.")


def _cast(emu: TelegramEmulator) -> dict[str, Any]:
    """Names to ids, so a script can act as the demo's people."""
    people = {u.first_name.lower(): u.id for u in emu.users.values() if not u.is_bot}
    chats = {c.title: c.id for c in emu.chats.values()}
    bots = {u.username: u.id for u in emu.users.values() if u.is_bot}
    return {"people": people, "chats": chats, "bots": bots}
