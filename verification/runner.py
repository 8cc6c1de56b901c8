"""Running bots: the lifecycle `runbot` (and the runtime supervisor) call.

* `register_token(token)` validates a token with getMe and stores the bot.
* `build(bot_instance)` builds its Application with the project factory and
  installs the engine: `(application, engine)`.
* `run_bot(bot_instance, stop)` polls one bot until `stop` is set, in PTB's
  manual order (`initialize`, `updater.start_polling`, `start`, wait,
  `updater.stop`, `stop`, `shutdown`), so it can share a loop with other bots
  and a web server.
* `maintain(engine, stop)` is a bot's periodic work (join-request sweep,
  scheduled /doctor check-up); `running()` starts it for polling bots.
* `run_bots(bots, stop)` runs several, plus the event recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from asgiref.sync import sync_to_async
from django.db import connections
from telegram import Bot, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, BaseRateLimiter, ContextTypes, TypeHandler

from bots import command_queue, crypto, metrics
from bots.application import api_base_url, build_application
from bots.models import BotInstance
from bots.ratelimit import TelegramRateLimiter
from verification import ALLOWED_UPDATES
from verification.engine import Engine
from verification.handlers import install
from verification.recorder import recorder

logger = structlog.get_logger(__name__)

SWEEP_INTERVAL = 60.0
CHECKUP_INTERVAL = 15 * 60.0
CHECKUP_DELAY = 60.0
# Executors finish in seconds; a command RUNNING this long was orphaned by a dead runbot.
STALE_COMMAND_AGE = datetime.timedelta(minutes=15)


class TokenRejected(Exception):
    """Telegram refused the token (getMe failed)."""


async def register_token(token: str, *, api_url: str | None = None) -> BotInstance:
    """Validate a token with getMe and create or update its BotInstance."""
    token = token.strip()
    if not crypto.is_token_format(token):
        raise TokenRejected("BOT_TOKEN does not look like a Telegram bot token (123456:ABC-...).")
    bot = Bot(token, base_url=api_base_url(api_url))
    try:
        async with bot:
            me = await bot.get_me()
    except InvalidToken as exc:
        raise TokenRejected("Telegram rejected BOT_TOKEN (getMe: unauthorized).") from exc
    except TelegramError as exc:
        raise TokenRejected(f"Could not validate BOT_TOKEN with getMe: {exc}") from exc
    return await sync_to_async(_store_bot)(token, me.username or "", me.first_name or "")


def _store_bot(token: str, username: str, name: str) -> BotInstance:
    # Look up by the id set_token stores (the token's own prefix), so a second start
    # with the same BOT_TOKEN updates the row instead of inserting a duplicate.
    token_id = crypto.bot_id_from_token(token)
    instance = BotInstance.objects.filter(telegram_id=token_id).first() or BotInstance()
    instance.set_token(token)
    instance.username, instance.display_name = username, name[:128]
    instance.save()
    return instance


def active_bots(only: str | None = None) -> list[BotInstance]:
    bots = BotInstance.objects.filter(is_active=True)
    if only:
        bots = bots.filter(username__iexact=only.lstrip("@")) if not only.isdigit() else \
            bots.filter(telegram_id=int(only))
    return list(bots)


aactive_bots = sync_to_async(active_bots)


def build(bot_instance: BotInstance, *, api_url: str | None = None,
          rate_limiter: BaseRateLimiter | None = None,
          with_updater: bool = True) -> tuple[Application, Engine]:
    """The bot's Application with the engine installed.

    Every bot gets its own rate limiter (priorities, Telegram's limits,
    `retry_after` honoured) unless the caller brings one.
    """
    if rate_limiter is None:
        rate_limiter = TelegramRateLimiter(name=str(bot_instance.pk))
    application = build_application(bot_instance.token, api_url=api_url,
                                    rate_limiter=rate_limiter, with_updater=with_updater)
    application.add_handler(TypeHandler(Update, _update_logger(bot_instance.pk)), group=-100)
    engine = install(application, bot_instance)
    return application, engine


def _update_logger(bot_pk: int) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
    async def log_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        kind = _update_type(update)
        metrics.record_update(bot_pk, kind)
        logger.info("update.handled", update_id=update.update_id, bot=bot_pk,
                    chat_id=chat.id if chat else None, type=kind)

    return log_update


def _update_type(update: Update) -> str:
    for name in ALLOWED_UPDATES:
        if getattr(update, name, None) is not None:
            return name
    return "other"


@contextlib.asynccontextmanager
async def running(bot_instance: BotInstance, *, api_url: str | None = None,
                  rate_limiter: BaseRateLimiter | None = None,
                  ) -> AsyncIterator[tuple[Application, Engine]]:
    """One bot polling inside the block; on exit handlers finish and work drains."""
    application, engine = build(bot_instance, api_url=api_url, rate_limiter=rate_limiter)
    log = logger.bind(bot=bot_instance.pk, username=bot_instance.username)
    stop = asyncio.Event()
    async with application:
        await application.updater.start_polling(allowed_updates=list(ALLOWED_UPDATES))
        await application.start()
        log.info("bot.started")
        sweeper = asyncio.create_task(maintain(engine, stop))
        try:
            yield application, engine
        finally:
            stop.set()
            await application.updater.stop()
            await application.stop()
            await engine.close()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            log.info("bot.stopped")


async def run_bot(bot_instance: BotInstance, stop: asyncio.Event, *,
                  api_url: str | None = None,
                  rate_limiter: BaseRateLimiter | None = None) -> None:
    """Poll one bot until `stop` is set."""
    async with running(bot_instance, api_url=api_url, rate_limiter=rate_limiter):
        await stop.wait()


async def maintain(engine: Engine, stop: asyncio.Event) -> None:
    """A bot's periodic work until `stop`: every minute decline stale join requests,
    delete warnings a restart left behind and fail commands a dead runbot left running;
    every `CHECKUP_INTERVAL` run the /doctor check-up on every protected group."""
    loop = asyncio.get_running_loop()
    # The first check-up waits a minute: start-up has enough to do.
    last_checkup = loop.time() - CHECKUP_INTERVAL + CHECKUP_DELAY
    while not stop.is_set():
        try:
            await engine.handlers.sweep_join_requests()
            await engine.handlers.sweep_warnings()
            await command_queue.afail_stale(engine.bot_pk, STALE_COMMAND_AGE)
            if loop.time() - last_checkup >= CHECKUP_INTERVAL:
                last_checkup = loop.time()
                await engine.commands.checkup()
        except Exception:
            logger.exception("maintenance.failed", bot=engine.bot_pk)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=SWEEP_INTERVAL)


async def run_bots(bots: list[BotInstance], stop: asyncio.Event, *,
                   api_url: str | None = None) -> None:
    """Run every bot and the event recorder until `stop`; one failing bot does not stop others."""
    flusher = asyncio.create_task(recorder.run(stop))
    tasks = [asyncio.create_task(_guarded(b, stop, api_url)) for b in bots]
    await asyncio.gather(*tasks)
    await flusher
    await sync_to_async(connections.close_all)()


async def _guarded(bot_instance: BotInstance, stop: asyncio.Event, api_url: str | None) -> None:
    try:
        await run_bot(bot_instance, stop, api_url=api_url)
    except Exception:
        logger.exception("bot.failed", bot=bot_instance.pk)

