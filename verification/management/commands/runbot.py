"""`manage.py runbot`: poll every active bot until SIGINT/SIGTERM.

Minimal form (issue 4): registers BOT_TOKEN when set (validated with getMe),
runs the active BotInstances with long polling against TELEGRAM_API_URL, and
stops cleanly. The lifecycle lives in `verification.runner` so the runtime
supervisor can call it.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from verification import runner

logger = structlog.get_logger(__name__)


def install_signal_handlers(stop: asyncio.Event) -> list[signal.Signals]:
    """SIGINT and SIGTERM only ask to stop; bots then drain and flush on their own."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
        installed.append(sig)
    return installed


class Command(BaseCommand):
    help = "Run the Telegram bots (long polling) until interrupted."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bot", help="Run only this bot (@username or Telegram id).")

    def handle(self, *args, **options) -> None:
        asyncio.run(self.run(options.get("bot")))

    async def run(self, only: str | None) -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await self.main(only, stop)

    async def main(self, only: str | None, stop: asyncio.Event) -> None:
        if settings.BOT_TOKEN:
            try:
                instance = await runner.register_token(settings.BOT_TOKEN)
            except runner.TokenRejected as exc:
                raise CommandError(str(exc)) from exc
            logger.info("bot.registered", bot=instance.pk, username=instance.username)
        bots = await runner.aactive_bots(only)
        if not bots:
            raise CommandError("No active bot. Set BOT_TOKEN or add a bot in admin.")
        logger.info("runbot.starting", bots=[b.username or b.pk for b in bots],
                    api_url=settings.TELEGRAM_API_URL)
        await runner.run_bots(bots, stop)
        logger.info("runbot.stopped")
