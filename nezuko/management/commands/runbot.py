"""`manage.py runbot`: every active bot, and the web application, in one process.

A thin command around `bots.supervisor.Supervisor`, run with what the
composition root `nezuko.runtime` assembles from the apps (`runtime_options()`):

* default: a daphne `Server` hosts `nezuko.asgi.build_application()` (admin,
  dashboard, API, websockets, and the webhook route, which shares its table of
  receivers with the bots) on `--host`/`--port`; its `ready_callable`
  schedules the supervisor on daphne's own asyncio loop, which daphne makes
  current just before calling it, so bots and web share one loop and the
  embedded in-memory channel layer reaches the browser. When the supervisor
  has drained, the command stops the server.
* `--no-web`: `asyncio.run(...)` of the supervisor alone (beside separate
  `daphne nezuko.asgi:application` web workers on PostgreSQL + Redis).
* `--once`: take what is pending once (updates, commands), flush and exit.

SIGTERM/SIGINT only set an asyncio.Event; the supervisor then stops taking
updates, finishes those in flight within `--drain-timeout`, flushes buffered
events and writes each bot's final heartbeat.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from bots import served
from bots.bus import bus_enabled
from bots.models import BotInstance
from bots.registration import TokenRejected, aregister_bot
from bots.supervisor import RuntimeOptions, Supervisor, aload_bots
from nezuko.runtime import runtime_options

logger = structlog.get_logger(__name__)

# Exit statuses (sysexits.h) a service manager can tell apart: a busy port may
# free up, so restart; a refused token will not fix itself (RestartPreventExitStatus=).
EXIT_CANNOT_LISTEN = EXIT_TEMPORARY = 75  # EX_TEMPFAIL
EXIT_CONFIGURATION = 78  # EX_CONFIG


def install_signal_handlers(stop: asyncio.Event) -> list[signal.Signals]:
    """SIGINT and SIGTERM only ask to stop; bots then drain and flush on their own."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
        installed.append(sig)
    return installed


async def all_refused_at_start_up(
    supervisor: Supervisor, bots: Sequence[BotInstance], stop: asyncio.Event
) -> bool:
    """True, with `stop` set, when Telegram refused the token of every bot in `bots`.

    Returns False as soon as one bot runs; no bots at all is not a refusal.
    """
    wanted = {bot.pk for bot in bots}
    # Polling: the supervisor signals neither outcome, and this ends at start-up.
    while wanted and not stop.is_set():  # noqa: ASYNC110
        if any(r.ready.is_set() for r in supervisor.runners.values()):
            return False
        if wanted <= supervisor.refused:
            stop.set()
            return True
        await asyncio.sleep(0.1)
    return False


def refuse_pins_on_the_bus(selectors: Sequence[str] | None, *, once: bool) -> None:
    """`--bot` with the update bus on: a clear start-up error (78).

    On the bus every process computes the same share of every bot's partitions from
    the live members; a pinned process would be given partitions of bots it does not
    run, and those chats would wait. `--once` never uses the bus, so it may pin."""
    if selectors and not once and bus_enabled():
        raise CommandError(
            "--bot pins bots to this process, but the update bus is on (REDIS_URL is set) "
            "and processes on it share every bot. Set NEZUKO_UPDATE_BUS=off to pin bots, "
            "or run without --bot.",
            returncode=EXIT_CONFIGURATION,
        )


class Command(BaseCommand):
    help = "Run every active Telegram bot and, unless --no-web, the web application."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--bot",
            action="append",
            help="Run only this bot (@username, Telegram id or database id); repeatable.",
        )
        parser.add_argument("--no-web", action="store_true", help="Run the bots only.")
        parser.add_argument("--host", default="127.0.0.1", help="Web address (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Web port (default 8000).")
        parser.add_argument(
            "--once",
            action="store_true",
            help="Handle what is pending once (updates, commands), flush and exit.",
        )
        parser.add_argument(
            "--drain-timeout",
            type=float,
            default=30.0,
            help="Seconds to finish updates in flight on SIGTERM (default 30).",
        )

    def handle(self, *args, **options) -> None:
        selectors = options.get("bot")
        refuse_pins_on_the_bus(selectors, once=options["once"])
        runtime = {"once": options["once"], "drain_timeout": options["drain_timeout"]}
        if options["no_web"] or options["once"]:
            asyncio.run(self.run(selectors, **runtime))
        else:
            self.serve_with_web(options["host"], options["port"], selectors, runtime)

    async def run(self, only: Sequence[str] | str | None, **runtime) -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await self.main(only, stop, **runtime)

    async def main(
        self,
        only: Sequence[str] | str | None,
        stop: asyncio.Event,
        *,
        once: bool = False,
        drain_timeout: float = 30.0,
        wait_for_bots: bool = False,
        options: RuntimeOptions | None = None,
    ) -> None:
        """Register BOT_TOKEN, then supervise the bots until `stop` is set.

        Without any active bot this raises CommandError, unless `wait_for_bots`
        (with web: admin is right here, and a bot added there starts).
        `options`: the composed runtime (with web, the one whose webhook table the
        served ASGI app shares); composed here when not given.
        """
        selectors = [only] if isinstance(only, str) else only
        if settings.BOT_TOKEN:
            try:
                instance = await aregister_bot(settings.BOT_TOKEN, again=True)
            except TokenRejected as exc:
                # Refused: fix the token (78, no restart loop). Telegram unreachable or
                # flooding: a temporary failure (75), and a restart tries again.
                code = EXIT_TEMPORARY if exc.transient else EXIT_CONFIGURATION
                raise CommandError(f"BOT_TOKEN: {exc}", returncode=code) from None
            logger.info("bot.registered", bot=instance.pk, username=instance.username)
        if options is None:
            options = runtime_options(selectors, once=once, drain_timeout=drain_timeout)
        bots = await aload_bots(options.bot_filter)
        if not bots and not wait_for_bots:
            raise CommandError("No active bot. Set BOT_TOKEN or add a bot in admin.")
        logger.info(
            "runbot.starting",
            bots=[b.username or b.pk for b in bots],
            api_url=settings.TELEGRAM_API_URL,
            mode="webhook" if options.uses_webhooks else "polling",
        )
        supervisor = Supervisor(options)
        watch = asyncio.create_task(all_refused_at_start_up(supervisor, bots, stop))
        await supervisor.run(stop)
        watch.cancel()
        # No request signals close the ORM thread's connections in a command.
        await sync_to_async(connections.close_all)()
        if watch.done() and not watch.cancelled() and watch.result():
            raise CommandError(
                "Telegram refused every bot's token (revoked or wrong): fix them in admin "
                "or BOT_TOKEN.",
                returncode=EXIT_CONFIGURATION,
            )
        logger.info("runbot.stopped")

    def serve_with_web(
        self, host: str, port: int, selectors: Sequence[str] | None, runtime: dict
    ) -> None:
        """daphne and the supervisor on one asyncio loop (see the module docstring)."""
        # Importing daphne.server installs Twisted's asyncio reactor: only here.
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from nezuko.asgi import build_application

        # One webhook table for the bots and the route daphne serves.
        options = runtime_options(selectors, **runtime)
        application = build_application(options.webhook_receivers)
        failures: list[BaseException] = []

        async def supervise() -> None:
            stop = asyncio.Event()
            install_signal_handlers(stop)
            # Login links point here unless DASHBOARD_URL says otherwise (port 0 included).
            served.announce(host, server.listening_addresses[0][1]
                            if server.listening_addresses else port)
            try:
                await self.main(selectors, stop, wait_for_bots=True, options=options, **runtime)
            except BaseException as exc:
                failures.append(exc)
            finally:
                server.stop()

        def ready() -> None:
            # daphne has just made its loop current; this task runs beside the server.
            asyncio.get_event_loop().create_task(supervise())
            logger.info("runbot.web_listening", host=host, port=port)

        server = Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=False,
            ready_callable=ready,
            server_name="nezuko",
        )
        server.run()
        if not server.listening_addresses:
            # daphne logs the listen failure and returns as if it had been stopped.
            raise CommandError(f"Could not listen on {host}:{port}.",
                               returncode=EXIT_CANNOT_LISTEN)
        if failures:
            raise failures[0]
