"""One bot in runbot: its Application, update source, heartbeat and commands.

`BotRunner` gets its own Application from the project factory, with its own
rate limiter and a per-person update processor, and receives updates from
our own long-polling loop or from the webhook route:

* Polling is ours rather than PTB's Updater so raw update dicts can go
  through the engine's fast path before any PTB object is built (building one
  costs ~100 µs), so a revoked token surfaces as an error we can act on, and
  so fetching waits while too many updates are unhandled.
* In webhook mode the runner calls setWebhook with a per-bot URL and secret
  and registers itself with `bots.webhook`; stopping unregisters, so
  Telegram's retries land after the restart.

The delivery guarantee: at least once, with exactly-once effect. An update is
confirmed to Telegram (the next getUpdates offset, or the webhook's 200) only
after it was decided on the spot by the fast path or appended to the bot's
journal (`bots.journal`); it leaves the journal when its handlers finished.
A restart, after SIGTERM or kill -9, handles what the journal still holds
before it polls again. An update whose handling failed because the database
was unreachable stays pending and is tried again. Duplicates are dropped by
update id; what a handler does twice must be harmless (the engine checks its
restriction ledger before restricting).

`RuntimeOptions` is what runbot composes: the engine's parts (`bots` knows
nothing of the engine) and the runtime's knobs. `bots.supervisor` starts,
stops and restarts runners.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from django.conf import settings
from telegram import Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ContextTypes, TypeHandler

from bots import metrics, webhook
from bots.application import PerUserUpdateProcessor, build_application
from bots.command_queue import CommandQueue, Executor
from bots.heartbeat import BEAT_INTERVAL_SECONDS, Heartbeat, describe_error
from bots.journal import UpdateJournal
from bots.locks import BotLocks
from bots.models import BotInstance
from bots.ratelimit import Limits, TelegramRateLimiter, retry_after_seconds
from bots.spool import is_outage

logger = structlog.get_logger(__name__)

InstallFn = Callable[[Application, BotInstance], Any]
FastPath = Callable[[Any, dict[str, Any]], bool]
BotTask = Callable[[Any, asyncio.Event], Awaitable[None]]
Service = Callable[[asyncio.Event], Awaitable[None]]
Flusher = Callable[[], Awaitable[Any]]

# Runs before every engine handler: counts updates for the heartbeat and metrics.
COUNT_GROUP = -1_000
POLL_TIMEOUT_SECONDS = 25
RECENT_UPDATE_IDS = 10_000
# An update that failed because the database was unreachable is tried again after
# these many seconds (doubling per attempt); it stays journaled meanwhile.
RETRY_FIRST_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0

# Handlers that apps above the engine add to every bot (the dashboard's /login).
# runbot lives in `verification`, which must not import those apps, so they
# register here at start-up instead.
_application_extensions: list[Callable[[Application], None]] = []


def extend_applications(extension: Callable[[Application], None]) -> None:
    if extension not in _application_extensions:
        _application_extensions.append(extension)


@dataclasses.dataclass
class RuntimeOptions:
    """What runbot composes: the engine's parts and the runtime's knobs.

    install: `install(application, bot_instance) -> engine`; an engine with an
        async `close()` is closed after its bot drains.
    fast_path: `fast_path(engine, raw_update) -> bool`; True means the update
        was fully decided from raw JSON and needs no PTB objects.
    bot_tasks: per-bot loops, `task(engine, stop)`, stopped with their bot.
    services: process-wide loops, `service(stop)`, stopped after every bot drained.
    flushers: awaited last, after the services stopped (buffered events).
    """

    install: InstallFn
    allowed_updates: Sequence[str]
    executors: Mapping[str, Executor] = dataclasses.field(default_factory=dict)
    bot_filter: Callable[[BotInstance], bool] | None = None
    api_url: str | None = None
    webhook_url: str | None = None  # None: settings.WEBHOOK_URL; "": polling
    fast_path: FastPath | None = None
    bot_tasks: Sequence[BotTask] = ()
    services: Sequence[Service] = ()
    flushers: Sequence[Flusher] = ()
    locks: BotLocks | None = None
    limits: Limits | None = None
    reconcile_interval: float = 5.0
    drain_timeout: float = 30.0
    heartbeat_interval: float = BEAT_INTERVAL_SECONDS
    command_interval: float = 2.0
    max_concurrent_updates: int = 512
    max_pending_updates: int = 5_000
    once: bool = False

    @property
    def webhook_base(self) -> str:
        return settings.WEBHOOK_URL if self.webhook_url is None else self.webhook_url

    @property
    def uses_webhooks(self) -> bool:
        return bool(self.webhook_base)


def update_type(raw: dict[str, Any]) -> str:
    for key in raw:
        if key != "update_id":
            return key
    return "unknown"


class BotRunner:
    """One bot's Application, update source, heartbeat and command queue."""

    def __init__(self, bot: BotInstance, options: RuntimeOptions) -> None:
        self.bot = bot
        self.pk = bot.pk
        self.telegram_id = bot.telegram_id
        self.fingerprint = bot.token_fingerprint
        self.options = options
        self.heartbeat = Heartbeat(bot.pk)
        metrics.name_bot(bot.pk, bot.username)
        self.limiter = TelegramRateLimiter(options.limits, name=str(bot.pk))
        self.processor = PerUserUpdateProcessor(options.max_concurrent_updates, self._done)
        self.processor.on_blocked = self.limiter.boost
        self.stop_event = asyncio.Event()
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.application: Application | None = None
        self.engine: Any = None
        self.offset: int | None = None
        self.journal: UpdateJournal | None = None
        self._outage_failed: set[int] = set()
        self._attempts: dict[int, int] = {}
        self._recent: deque[int] = deque()
        self._recent_set: set[int] = set()
        self.log = logger.bind(bot=bot.pk, username=bot.username)

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"nezuko-bot-{self.pk}")

    async def stop(self) -> None:
        """Ask the bot to stop and wait until it drained (bounded by drain_timeout)."""
        self.stop_event.set()
        if self.task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        await self.heartbeat.starting()
        application = build_application(
            self.bot.token,
            api_url=self.options.api_url,
            rate_limiter=self.limiter,
            with_updater=False,
            update_processor=self.processor,
        )
        application.add_handler(TypeHandler(Update, self._count), group=COUNT_GROUP)
        application.add_error_handler(self._note_outage)
        self.engine = self.options.install(application, self.bot)
        for extend in _application_extensions:
            extend(application)
        metrics.time_handlers(application, self.pk, skip_groups=(COUNT_GROUP,))
        self.application = application
        try:
            # initialize() calls getMe: a revoked token raises InvalidToken here.
            await application.initialize()
            await application.start()
            await self._replay_journal()
            source = asyncio.create_task(self._receive(), name=f"nezuko-source-{self.pk}")
            loops = [
                asyncio.create_task(self._beat_loop()),
                asyncio.create_task(self._command_loop()),
                *(
                    asyncio.create_task(task(self.engine, self.stop_event))
                    for task in self.options.bot_tasks
                ),
            ]
            self.ready.set()
            await self.heartbeat.running()
            metrics.set_bot_up(self.pk, True)
            self.log.info(
                "bot.running", mode="webhook" if self.options.uses_webhooks else "polling"
            )
            stopping = asyncio.create_task(self.stop_event.wait())
            await asyncio.wait({source, stopping}, return_when=asyncio.FIRST_COMPLETED)
            failure = source.exception() if source.done() and not source.cancelled() else None
            if self.options.once and failure is None:
                await CommandQueue(self.pk, application, self.options.executors).run_pending()
            self.stop_event.set()
            await self._drain(source, loops)
            if failure is not None:
                raise failure
        finally:
            metrics.set_bot_up(self.pk, False)
            webhook.unregister(self.telegram_id)
            if self.journal is not None:
                self.journal.close()
            with contextlib.suppress(Exception):
                await application.shutdown()

    async def _drain(self, source: asyncio.Task[None], loops: list[asyncio.Task[Any]]) -> None:
        """Stop taking updates, finish those in flight (bounded), then the per-bot loops."""
        webhook.unregister(self.telegram_id)
        if not source.done():
            source.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await source
        assert self.application is not None
        stopping = asyncio.ensure_future(self.application.stop())
        try:
            await asyncio.wait_for(asyncio.shield(stopping), self.options.drain_timeout)
        except TimeoutError:
            # Nothing is lost: what did not finish stays journaled for the next start.
            self.log.warning(
                "bot.drain_deadline",
                left_pending=self.journal.pending if self.journal else 0,
            )
            self.processor.cancel_all()
            with contextlib.suppress(Exception, asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(stopping, 5)
        await self._confirm_offset()
        close = getattr(self.engine, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.heartbeat.beat()

    # --- receiving updates ------------------------------------------------------------

    async def _receive(self) -> None:
        # Show in admin and on the dashboard how this bot gets its updates.
        mode = (BotInstance.UpdateMode.WEBHOOK if self.options.uses_webhooks
                else BotInstance.UpdateMode.POLLING)
        await BotInstance.objects.filter(pk=self.pk).exclude(update_mode=mode).aupdate(
            update_mode=mode
        )
        if self.options.uses_webhooks:
            await self._open_webhook()
            await self._watch_token()
        else:
            await self._poll()

    async def _open_webhook(self) -> None:
        assert self.application is not None
        webhook.register(self.telegram_id, self.feed)
        await self.application.bot.set_webhook(
            url=webhook.webhook_url(self.telegram_id, self.options.webhook_base),
            secret_token=webhook.webhook_secret(self.telegram_id),
            allowed_updates=list(self.options.allowed_updates),
        )

    async def _watch_token(self) -> None:
        """Webhook mode: no polling notices a revoked token, so ask now and then."""
        assert self.application is not None
        while not self.stop_event.is_set():
            await self._sleep(self.options.heartbeat_interval)
            try:
                await self.application.bot.get_me()
            except InvalidToken:
                raise
            except TelegramError as exc:
                self.log.warning("bot.get_me_failed", error=describe_error(exc))

    async def _poll(self) -> None:
        """getUpdates until stopped; raises InvalidToken when Telegram refuses the token."""
        assert self.application is not None
        bot = self.application.bot
        await bot.delete_webhook(drop_pending_updates=False)
        failures = 0
        while not self.stop_event.is_set():
            await self._wait_for_room()
            timeout = 0 if self.options.once else POLL_TIMEOUT_SECONDS
            try:
                batch = await self._get_updates(timeout)
            except InvalidToken:
                raise
            except RetryAfter as exc:
                await self._sleep(retry_after_seconds(exc))
                continue
            except (Conflict, TimedOut, TelegramError) as exc:
                # One line per retry, with the reason; the traceback says nothing more.
                failures += 1
                delay = 0.0 if isinstance(exc, TimedOut) else min(30.0, 2.0**failures)
                event = "bot.poll_conflict" if isinstance(exc, Conflict) else "bot.poll_failed"
                self.log.warning(event, error=describe_error(exc), retry_in=delay)
                await self._sleep(delay)
                continue
            failures = 0
            if batch:
                # Journaled first: the next getUpdates confirms this batch to Telegram.
                await self.take(batch, polled=True)
                self.offset = batch[-1]["update_id"] + 1
            elif self.options.once:
                return

    async def _get_updates(self, poll_seconds: int) -> list[dict[str, Any]]:
        assert self.application is not None
        params: dict[str, Any] = {
            "timeout": poll_seconds,
            "limit": 100,
            "allowed_updates": list(self.options.allowed_updates),
        }
        if self.offset is not None:
            params["offset"] = self.offset
        # Bot._post is the one call that returns raw JSON: get_updates builds
        # every Update (~100 µs each) before the fast path could skip it.
        result = await self.application.bot._post(
            "getUpdates", params, read_timeout=poll_seconds + 10
        )
        return [item for item in result if isinstance(item, dict) and "update_id" in item]

    async def _wait_for_room(self) -> None:
        """Back-pressure: fetch no more while too many updates wait to be handled."""
        # Polling: the count changes inside PTB's tasks, which signal nothing.
        while self._pending() >= self.options.max_pending_updates:  # noqa: ASYNC110
            if self.stop_event.is_set():
                return
            await asyncio.sleep(0.05)

    def _pending(self) -> int:
        """Updates received and not handled: queued, running, or waiting for a retry
        after a database outage (every one of them is journaled)."""
        assert self.journal is not None
        return self.journal.pending

    async def _confirm_offset(self) -> None:
        """Confirm the last batch to Telegram once nothing is left to handle.

        While the journal still holds updates they stay unconfirmed too, so a
        process on another host that takes this bot over receives them again.
        """
        if self.options.uses_webhooks or self.offset is None or self.application is None:
            return
        if self.journal is not None and self.journal.pending:
            return
        with contextlib.suppress(Exception):
            await self.application.bot._post(
                "getUpdates", {"offset": self.offset, "limit": 1, "timeout": 0}
            )

    async def feed(self, raw: dict[str, Any]) -> None:
        """A webhook delivery: journaled or decided before the caller answers 200.

        Raises ValueError when PTB cannot build an Update from it.
        """
        if await self.take([raw]):
            raise ValueError("not an update")

    async def take(self, batch: list[dict[str, Any]], *, polled: bool = False) -> int:
        """Hand raw updates to the engine: the fast path, else journal and PTB's queue.

        Returns how many were malformed (logged and left out: Telegram would only
        send them again). `polled`: a getUpdates batch, whose ids the journal keeps.
        """
        assert self.application is not None and self.journal is not None
        raws: list[dict[str, Any]] = []
        updates: list[Update] = []
        malformed = 0
        for raw in batch:
            if self._seen(raw["update_id"]):
                continue  # Telegram re-sent it: a webhook retry, an unconfirmed offset
            metrics.observe_update(self.pk, raw)
            if self.options.fast_path is not None and self.options.fast_path(self.engine, raw):
                self.heartbeat.count_update()
                metrics.record_update(self.pk, update_type(raw))
                continue
            update = self._build(raw)
            if update is None:
                malformed += 1
            else:
                raws.append(raw)
                updates.append(update)
        self.journal.append(raws, [raw["update_id"] for raw in batch] if polled else None)
        if updates:
            for update in updates:
                await self.application.update_queue.put(update)
            metrics.set_updates_pending(self.pk, self.journal.pending)
        return malformed

    def _build(self, raw: dict[str, Any]) -> Update | None:
        assert self.application is not None
        try:
            return Update.de_json(raw, self.application.bot)
        except Exception as exc:
            self.log.warning("update.malformed", update_id=raw.get("update_id"),
                             error=type(exc).__name__)
            return None

    async def _replay_journal(self) -> None:
        """Handle first what a previous run journaled and did not finish."""
        self.journal = UpdateJournal(
            settings.NEZUKO_SPOOL_DIR / "updates" / f"bot-{self.telegram_id}.jsonl",
            fsync=settings.NEZUKO_JOURNAL_FSYNC,
        )
        pending = await asyncio.to_thread(self.journal.open)
        # Telegram may send the last batch again (nothing confirmed it): drop it then.
        for update_id in self.journal.last_batch:
            self._seen(update_id)
        assert self.application is not None
        for raw in pending:
            self._seen(raw["update_id"])
            update = self._build(raw)
            if update is None:
                self.journal.done([raw["update_id"]])
            else:
                await self.application.update_queue.put(update)
        if pending:
            metrics.record_reprocessed(self.pk, "restart", len(pending))
            self.log.info("bot.journal_replayed", updates=len(pending))
        metrics.set_updates_pending(self.pk, self.journal.pending)

    def _seen(self, update_id: int) -> bool:
        if update_id in self._recent_set:
            return True
        self._recent.append(update_id)
        self._recent_set.add(update_id)
        if len(self._recent) > RECENT_UPDATE_IDS:
            self._recent_set.discard(self._recent.popleft())
        return False

    async def _count(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        kind = _ptb_update_type(update)
        chat = update.effective_chat
        self.log.info(
            "update.handled",
            update_id=update.update_id,
            chat_id=chat.id if chat else None,
            type=kind,
        )
        self.heartbeat.count_update()
        metrics.record_update(self.pk, kind)

    async def _note_outage(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An error handler: remember updates that failed only because the database
        was unreachable, so `_done` keeps them for another try."""
        if isinstance(update, Update) and context.error is not None and is_outage(context.error):
            self._outage_failed.add(update.update_id)

    def _done(self, update: object, finished: bool) -> None:
        """The processor finished (or, past the drain deadline, cancelled) an update."""
        if not finished or not isinstance(update, Update) or self.journal is None:
            return  # cancelled: it stays journaled for the next start
        update_id = update.update_id
        if update_id in self._outage_failed:
            self._outage_failed.discard(update_id)
            self._retry_later(update)
            return
        self._attempts.pop(update_id, None)
        self.journal.done([update_id])
        metrics.set_updates_pending(self.pk, self.journal.pending)

    def _retry_later(self, update: Update) -> None:
        """Handle it again once the database may be back (it stays journaled)."""
        attempt = self._attempts.get(update.update_id, 0) + 1
        self._attempts[update.update_id] = attempt
        delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempt - 1))
        self.log.warning("update.retry_after_outage", update_id=update.update_id,
                         attempt=attempt, delay=delay)
        metrics.record_reprocessed(self.pk, "database_unavailable")

        def requeue() -> None:
            if not self.stop_event.is_set() and self.application is not None:
                self.application.update_queue.put_nowait(update)

        asyncio.get_running_loop().call_later(delay, requeue)

    # --- background loops -----------------------------------------------------------

    async def _beat_loop(self) -> None:
        while not self.stop_event.is_set():
            await self._sleep(self.options.heartbeat_interval)
            try:
                await self.heartbeat.beat()
            except Exception as exc:
                self._loop_failed("bot.heartbeat_failed", exc)

    async def _command_loop(self) -> None:
        assert self.application is not None
        queue = CommandQueue(self.pk, self.application, self.options.executors)
        while not self.stop_event.is_set():
            try:
                await queue.run_pending()
            except Exception as exc:
                # The database blinked: the commands wait for the next pass.
                self._loop_failed("bot.commands_failed", exc)
            await self._sleep(self.options.command_interval)

    def _loop_failed(self, event: str, exc: Exception) -> None:
        """One line for an outage the loop rides out; the traceback only for a surprise."""
        if is_outage(exc):
            self.log.warning(event, error=describe_error(exc))
        else:
            self.log.warning(event, exc_info=exc)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the bot is asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), timeout=seconds)


def _ptb_update_type(update: Update) -> str:
    for name in (
        "message",
        "edited_message",
        "callback_query",
        "chat_member",
        "my_chat_member",
        "chat_join_request",
        "channel_post",
    ):
        if getattr(update, name, None) is not None:
            return name
    return "other"
