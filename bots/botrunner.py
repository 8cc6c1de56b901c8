"""One bot in runbot: its Application, update source, heartbeat and command loops.

`BotRunner` is the bot's life: it builds the Application from the project
factory (with its own rate limiter and per-person update processor), starts
the update source (`bots.updatesource`: polling or webhook intake, journal,
dedupe, back-pressure), runs the heartbeat and command loops beside it, and on
stop drains in a fixed order (`_drain` says why). `bots.supervisor` starts,
stops and restarts runners.

`RuntimeOptions` is what runbot's composition root (`nezuko.runtime`) hands
the runtime: the engine's parts (`bots` knows nothing of the engine), what the
apps above add (handlers, call observers, flushers) and the runtime's knobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from django.conf import settings
from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bots import metrics
from bots.application import build_application
from bots.bus import UpdateBus
from bots.bus_worker import BusAppender, BusWorker
from bots.command_queue import CommandQueue, Executor
from bots.heartbeat import BEAT_INTERVAL_SECONDS, Heartbeat, describe_error
from bots.journal import UpdateJournal
from bots.locks import BotLocks
from bots.metrics import CallObserver, RefusalObserver
from bots.models import BotInstance
from bots.ratelimit import Limits
from bots.ratelimit_redis import make_limiter
from bots.scheduler import PerUserUpdateProcessor
from bots.spool import is_outage
from bots.updatesource import (
    FastPath,
    JournaledConsumer,
    Poller,
    WebhookIntake,
    sleep_unless,
)
from bots.webhook import WebhookReceivers

logger = structlog.get_logger(__name__)

InstallFn = Callable[[Application, BotInstance], Any]
Extension = Callable[[Application], None]
BotTask = Callable[[Any, asyncio.Event], Awaitable[None]]
Service = Callable[[asyncio.Event], Awaitable[None]]
Flusher = Callable[[], Awaitable[Any]]

# Runs before every engine handler: counts updates for the heartbeat and metrics.
COUNT_GROUP = -1_000


@dataclasses.dataclass
class RuntimeOptions:
    """What runbot composes: the engine's parts, the apps' additions, the knobs.

    install: `install(application, bot_instance) -> engine`; an engine with an
        async `close()` is closed after its bot drains.
    fast_path: `fast_path(engine, raw_update) -> bool`; True means the update
        was fully decided from raw JSON and needs no PTB objects.
    extensions: `extend(application)` for every bot, after `install` (the
        dashboard's /login in a private chat).
    call_observers: told of every Bot API call by each bot's rate limiter
        (analytics' per-minute rollups).
    refusal_observers: told of every Bot API call Telegram refused, with its chat
        (the people directory marks who blocked the bot from a 403).
    webhook_receivers: the table the process's webhook route reads; a bot in
        webhook mode registers its intake there.
    bot_tasks: per-bot loops, `task(engine, stop)`, stopped with their bot.
    services: process-wide loops, `service(stop)`, stopped after every bot drained.
    flushers: awaited last, after the services stopped (buffered events, rollups).
    """

    install: InstallFn
    allowed_updates: Sequence[str]
    executors: Mapping[str, Executor] = dataclasses.field(default_factory=dict)
    bot_filter: Callable[[BotInstance], bool] | None = None
    api_url: str | None = None
    webhook_url: str | None = None  # None: settings.WEBHOOK_URL; "": polling
    fast_path: FastPath | None = None
    extensions: Sequence[Extension] = ()
    call_observers: Sequence[CallObserver] = ()
    refusal_observers: Sequence[RefusalObserver] = ()
    webhook_receivers: WebhookReceivers = dataclasses.field(default_factory=WebhookReceivers)
    bot_tasks: Sequence[BotTask] = ()
    services: Sequence[Service] = ()
    flushers: Sequence[Flusher] = ()
    locks: BotLocks | None = None
    # The update bus (bots.bus) when updates travel through Redis Streams; None:
    # the embedded default, each bot's updates journaled and handled in this process.
    bus: UpdateBus | None = None
    # setWebhook's max_connections: how many deliveries Telegram makes at once.
    webhook_max_connections: int = 40
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


class BotRunner:
    """One bot's Application, update source, heartbeat and command queue.

    On the bus (`options.bus`) a runner has a role: `polls` (the intake, heartbeat,
    command queue and per-bot loops: one process per bot) and `partitions`, the
    bus partitions its worker consumes (changed in place by `assign`).
    """

    def __init__(self, bot: BotInstance, options: RuntimeOptions, *, polls: bool = True,
                 partitions: frozenset[int] = frozenset(), consumer_name: str = "") -> None:
        self.bot = bot
        self.polls = polls
        self.partitions = partitions
        self.consumer_name = consumer_name
        self.worker: BusWorker | None = None
        self.pk = bot.pk
        self.telegram_id = bot.telegram_id
        self.fingerprint = bot.token_fingerprint
        self.options = options
        self.heartbeat = Heartbeat(bot.pk)
        metrics.name_bot(bot.pk, bot.username)
        self.limiter = make_limiter(
            options.limits,
            name=str(bot.pk),
            key=str(bot.telegram_id or bot.pk),
            call_observers=options.call_observers,
            refusal_observers=options.refusal_observers,
        )
        self.processor = PerUserUpdateProcessor(options.max_concurrent_updates, self._done)
        self.processor.on_blocked = self.limiter.boost
        self.stop_event = asyncio.Event()
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.application: Application | None = None
        self.engine: Any = None
        self.consumer: JournaledConsumer | None = None
        self.intake: Poller | WebhookIntake | None = None
        self.log = logger.bind(bot=bot.pk, username=bot.username)

    def assign(self, partitions: frozenset[int]) -> None:
        """The bus partitions this bot's worker consumes from now on."""
        self.partitions = partitions
        if self.worker is not None:
            self.worker.assign(partitions)

    @property
    def journal(self) -> UpdateJournal | None:
        """The bot's update journal (None before the bot started)."""
        return self.consumer.journal if self.consumer is not None else None

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
        if self.polls:
            await self.heartbeat.starting()
        application = self._build()
        try:
            # initialize() calls getMe: a revoked token raises InvalidToken here.
            await application.initialize()
            await application.start()
            if self.consumer is not None:
                await self.consumer.replay()
            source = asyncio.create_task(self._source(), name=f"nezuko-source-{self.pk}")
            loops = []
            if self.polls:
                # On the bus only the bot's polling process runs these: one per bot.
                loops = [
                    asyncio.create_task(self._beat_loop()),
                    asyncio.create_task(self._command_loop()),
                    *(
                        asyncio.create_task(task(self.engine, self.stop_event))
                        for task in self.options.bot_tasks
                    ),
                ]
            self.ready.set()
            if self.polls:
                await self.heartbeat.running()
                metrics.set_bot_up(self.pk, True)
            self.log.info(
                "bot.running", mode="webhook" if self.options.uses_webhooks else "polling",
                polls=self.polls, bus=self.options.bus is not None,
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
            self._close_intake()
            if self.consumer is not None:
                self.consumer.close()
            with contextlib.suppress(Exception):
                await application.shutdown()

    def _build(self) -> Application:
        """The Application with the engine, the apps' extensions and the consumer."""
        application = build_application(
            self.bot.token,
            api_url=self.options.api_url,
            rate_limiter=self.limiter,
            with_updater=False,
            update_processor=self.processor,
        )
        application.add_handler(TypeHandler(Update, self._count), group=COUNT_GROUP)
        self.engine = self.options.install(application, self.bot)
        for extend in self.options.extensions:
            extend(application)
        # After the engine and the extensions: every handler they added is timed.
        metrics.time_handlers(application, self.pk, skip_groups=(COUNT_GROUP,))
        self.application = application
        if self.options.bus is not None:
            self.worker = BusWorker(
                self.options.bus,
                str(self.telegram_id),
                self.pk,
                application,
                consumer=self.consumer_name,
                stop=self.stop_event,
                fast_path=self.options.fast_path,
                engine=self.engine,
                on_decided=self.heartbeat.count_update,
            )
            self.worker.assign(self.partitions)
            application.add_error_handler(self.worker.note_outage)
            return application
        self.consumer = JournaledConsumer(
            self.pk,
            application,
            settings.NEZUKO_SPOOL_DIR / "updates" / f"bot-{self.telegram_id}.jsonl",
            stop=self.stop_event,
            fast_path=self.options.fast_path,
            engine=self.engine,
            on_decided=self.heartbeat.count_update,
            fsync=settings.NEZUKO_JOURNAL_FSYNC,
        )
        application.add_error_handler(self.consumer.note_outage)
        return application

    async def _drain(self, source: asyncio.Task[None], loops: list[asyncio.Task[Any]]) -> None:
        """Stop taking updates, finish those in flight (bounded), then the per-bot loops.

        The order keeps the delivery guarantee: the intake closes first, so nothing
        new is confirmed to Telegram; updates in flight then get `drain_timeout` to
        finish (what does not stays journaled for the next start, so the deadline
        costs time, never an update); only then is the offset confirmed, and only if
        the journal is empty. The engine closes after its handlers, the loops last.
        """
        self._close_intake()
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
                left_pending=self.consumer.pending if self.consumer else 0,
            )
            self.processor.cancel_all()
            with contextlib.suppress(Exception, asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(stopping, 5)
        if self.worker is not None:
            # What the handlers finished while draining; the rest stays pending.
            await self.worker.flush_acks()
        if isinstance(self.intake, Poller):
            # On the bus every batch fetched is in Redis already: confirm it.
            await self.intake.confirm(force=self.worker is not None)
        close = getattr(self.engine, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if self.polls:
            with contextlib.suppress(Exception):
                await self.heartbeat.beat()

    # --- receiving updates ------------------------------------------------------------

    async def _source(self) -> None:
        """The intake (unless this runner only works bus partitions) and the bus worker."""
        if self.worker is None:
            await self._receive()
            return
        tasks = [asyncio.create_task(self.worker.run(), name=f"nezuko-bus-{self.pk}")]
        if self.polls:
            tasks.append(asyncio.create_task(self._receive()))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _receive(self) -> None:
        """Run the intake this bot's mode calls for, until stopped or it fails."""
        assert self.application is not None
        consumer: Any = self.consumer
        if self.worker is not None:
            consumer = BusAppender(self.worker.bus, str(self.telegram_id), stop=self.stop_event)
        assert consumer is not None
        # Show in admin and on the dashboard how this bot gets its updates.
        mode = (BotInstance.UpdateMode.WEBHOOK if self.options.uses_webhooks
                else BotInstance.UpdateMode.POLLING)
        await BotInstance.objects.filter(pk=self.pk).exclude(update_mode=mode).aupdate(
            update_mode=mode
        )
        if self.options.uses_webhooks:
            self.intake = WebhookIntake(
                self.application,
                consumer,
                self.options.webhook_receivers,
                telegram_id=self.telegram_id,
                base_url=self.options.webhook_base,
                stop=self.stop_event,
                allowed_updates=self.options.allowed_updates,
                token_check_interval=self.options.heartbeat_interval,
                max_connections=self.options.webhook_max_connections,
                log=self.log,
            )
        else:
            self.intake = Poller(
                self.application,
                consumer,
                stop=self.stop_event,
                allowed_updates=self.options.allowed_updates,
                max_pending=self.options.max_pending_updates,
                once=self.options.once,
                log=self.log,
            )
        await self.intake.run()

    def _close_intake(self) -> None:
        if isinstance(self.intake, WebhookIntake):
            self.intake.close()

    def _done(self, update: object, finished: bool) -> None:
        if self.worker is not None:
            self.worker.done(update, finished)
        elif self.consumer is not None:
            self.consumer.done(update, finished)

    async def _count(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        kind = _ptb_update_type(update)
        chat = update.effective_chat
        user = update.effective_user
        self.log.info(
            "update.handled",
            update_id=update.update_id,
            chat_id=chat.id if chat else None,
            user_id=user.id if user else None,
            type=kind,
        )
        self.heartbeat.count_update()
        metrics.record_update(self.pk, kind)

    # --- background loops -----------------------------------------------------------

    async def _beat_loop(self) -> None:
        while not self.stop_event.is_set():
            await sleep_unless(self.stop_event, self.options.heartbeat_interval)
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
            await sleep_unless(self.stop_event, self.options.command_interval)

    def _loop_failed(self, event: str, exc: Exception) -> None:
        """One line for an outage the loop rides out; the traceback only for a surprise."""
        if is_outage(exc):
            self.log.warning(event, error=describe_error(exc))
        else:
            self.log.warning(event, exc_info=exc)


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
