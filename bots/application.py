"""The one place python-telegram-bot Applications are built.

Production, tests, the demo and benchmarks all build bots here, so the bot
under test is the bot that runs: only `TELEGRAM_API_URL` differs.
"""

from __future__ import annotations

from django.conf import settings
from telegram.ext import Application, ApplicationBuilder, BaseRateLimiter, BaseUpdateProcessor


def api_base_url(api_url: str | None = None) -> str:
    """PTB appends the token to this: `{TELEGRAM_API_URL}/bot<token>/<method>`."""
    return f"{(api_url or settings.TELEGRAM_API_URL).rstrip('/')}/bot"


def build_application(
    token: str,
    *,
    api_url: str | None = None,
    rate_limiter: BaseRateLimiter | None = None,
    with_updater: bool = True,
    update_processor: BaseUpdateProcessor | None = None,
) -> Application:
    """A bot's Application. `update_processor` replaces strict one-at-a-time
    processing (the default) with, for instance, `bots.scheduler.PerUserUpdateProcessor`."""
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(api_base_url(api_url))
        .base_file_url(f"{(api_url or settings.TELEGRAM_API_URL).rstrip('/')}/file/bot")
        # Per-chat order matters (a join before the message that follows it),
        # and PTB's task-per-update halves throughput; see DESIGN.md.
        .concurrent_updates(False)
        .connection_pool_size(64)
        .pool_timeout(10)
        .connect_timeout(5)
        .read_timeout(15)
        .write_timeout(15)
        .get_updates_connect_timeout(5)
        .get_updates_read_timeout(40)
    )
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    if update_processor is not None:
        builder = builder.concurrent_updates(update_processor)
    if not with_updater:
        builder = builder.updater(None)
    return builder.build()
