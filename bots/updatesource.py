"""Where a bot's updates come from, and the promise made when taking them.

Two halves meet at one small interface, `UpdateConsumer`:

* an intake fetches raw update dicts from Telegram: `Poller` (our own
  getUpdates loop) or `WebhookIntake` (setWebhook, then deliveries arrive
  through `bots.webhook`);
* a consumer takes them: `JournaledConsumer` decides on the spot what the
  fast path can, journals the rest and queues them for PTB's handlers.

An intake knows nothing of journals or PTB; a consumer knows nothing of
getUpdates or HTTP. On the update bus (on when REDIS_URL is set) the consumer
is `bots.bus_worker.BusAppender`: `take()` returns once the batch is in Redis,
and the processes working the bot's partitions handle it (`bots.bus`).

The delivery guarantee: at least once, with exactly-once effect. An update is
confirmed to Telegram (the next getUpdates offset, or the webhook's 200) only
after `take()` returned, that is after it was decided on the spot or appended
to the bot's journal (`bots.journal`); it leaves the journal when its handlers
finished. A restart, after SIGTERM or kill -9, handles what the journal still
holds before it polls again. An update whose handling failed because the
database was unreachable stays journaled and is tried again. Duplicates are
dropped by update id; what a handler does twice must be harmless (the engine
checks its restriction ledger before restricting).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog
from telegram import Update
from telegram.error import (
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ContextTypes
from telegram.request import BaseRequest, RequestData
from telegram.request._requestparameter import RequestParameter  # what Bot._post encodes with

from bots import metrics
from bots.bus import BusUnavailable
from bots.heartbeat import describe_error
from bots.journal import UpdateJournal
from bots.ratelimit import retry_after_seconds
from bots.spool import is_outage
from bots.webhook import WebhookReceivers, webhook_secret, webhook_url

try:
    import ujson as _ujson  # as in bots.bus: the poller parses every batch on its hot path
except ImportError:  # pragma: no cover - the lock installs it
    _ujson = None

logger = structlog.get_logger(__name__)

FastPath = Callable[[Any, dict[str, Any]], bool]

POLL_TIMEOUT_SECONDS = 25
# Telegram re-sends what it thinks unconfirmed; ids seen this recently are dropped.
RECENT_UPDATE_IDS = 10_000
# An update that failed because the database was unreachable is tried again after
# these many seconds (doubling per attempt); it stays journaled meanwhile.
RETRY_FIRST_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


class UpdateConsumer(Protocol):
    """What an intake hands raw updates to."""

    @property
    def pending(self) -> int:
        """Updates taken and not yet handled: the intake's back-pressure signal."""
        ...

    async def take(self, batch: list[dict[str, Any]], *, polled: bool = False) -> int:
        """Make `batch` durable or decide it; returns how many were malformed.

        Once this returns, the intake may confirm the batch to Telegram.
        `polled`: a getUpdates batch, which Telegram sends again until confirmed.
        """
        ...


def update_type(raw: dict[str, Any]) -> str:
    for key in raw:
        if key != "update_id":
            return key
    return "unknown"


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake up at once when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class RecentIds:
    """The last RECENT_UPDATE_IDS update ids: what Telegram (or the bus) sent again."""

    def __init__(self, size: int = RECENT_UPDATE_IDS) -> None:
        self.size = size
        self._order: deque[int] = deque()
        self._ids: set[int] = set()

    def seen(self, update_id: int) -> bool:
        """True when `update_id` was seen already; otherwise remembers it."""
        if update_id in self._ids:
            return True
        self._order.append(update_id)
        self._ids.add(update_id)
        if len(self._order) > self.size:
            self._ids.discard(self._order.popleft())
        return False


def build_update(raw: dict[str, Any], application: Application, log: Any) -> Update | None:
    """PTB's Update for `raw`, or None (logged) when PTB cannot build one."""
    try:
        return Update.de_json(raw, application.bot)
    except Exception as exc:
        log.warning("update.malformed", update_id=raw.get("update_id"),
                    error=type(exc).__name__)
        return None


class OutageRetries:
    """Updates whose handlers met a database outage: the consumer keeps them (journaled
    or unacknowledged) and they go back to PTB's queue after 2 s, doubling to 60 s."""

    def __init__(self, bot_pk: int, application: Application, stop: asyncio.Event,
                 log: Any) -> None:
        self.bot_pk = bot_pk
        self.application = application
        self.stop = stop
        self.log = log
        self._failed: set[int] = set()
        self._attempts: dict[int, int] = {}

    async def note(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An error handler: remember updates that failed only because the database
        was unreachable."""
        if isinstance(update, Update) and context.error is not None and is_outage(context.error):
            self._failed.add(update.update_id)

    def retry_if_failed(self, update: Update) -> bool:
        """True (and a retry scheduled) when `update` failed on an outage; else forget it."""
        if update.update_id not in self._failed:
            self._attempts.pop(update.update_id, None)
            return False
        self._failed.discard(update.update_id)
        attempt = self._attempts.get(update.update_id, 0) + 1
        self._attempts[update.update_id] = attempt
        delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempt - 1))
        self.log.warning("update.retry_after_outage", update_id=update.update_id,
                         attempt=attempt, delay=delay)
        metrics.record_reprocessed(self.bot_pk, "database_unavailable")

        def requeue() -> None:
            if not self.stop.is_set():
                self.application.update_queue.put_nowait(update)

        asyncio.get_running_loop().call_later(delay, requeue)
        return True


class JournaledConsumer:
    """The in-process consumer: fast path, dedupe, journal, then PTB's update queue.

    `done()` is the update processor's `on_done` and `note_outage()` an error
    handler on the Application: together they take an update out of the
    journal once it was handled, or keep it for another try after an outage.
    """

    def __init__(
        self,
        bot_pk: int,
        application: Application,
        journal_path: Path,
        *,
        stop: asyncio.Event,
        fast_path: FastPath | None = None,
        engine: Any = None,
        on_decided: Callable[[], None] | None = None,
        fsync: bool = True,
    ) -> None:
        self.bot_pk = bot_pk
        self.application = application
        self.journal = UpdateJournal(journal_path, fsync=fsync)
        self.stop = stop
        self.fast_path = fast_path
        self.engine = engine
        self.on_decided = on_decided
        self.log = logger.bind(bot=bot_pk)
        self.retries = OutageRetries(bot_pk, application, stop, self.log)
        self.recent = RecentIds()

    @property
    def pending(self) -> int:
        """Updates received and not handled: queued, running, or waiting for a retry
        after a database outage (every one of them is journaled)."""
        return self.journal.pending

    async def replay(self) -> None:
        """Handle first what a previous run journaled and did not finish."""
        pending = await asyncio.to_thread(self.journal.open)
        # Telegram may send the last batch again (nothing confirmed it): drop it then.
        for update_id in self.journal.last_batch:
            self.recent.seen(update_id)
        for raw in pending:
            self.recent.seen(raw["update_id"])
            update = build_update(raw, self.application, self.log)
            if update is None:
                self.journal.done([raw["update_id"]])
            else:
                await self.application.update_queue.put(update)
        if pending:
            metrics.record_reprocessed(self.bot_pk, "restart", len(pending))
            self.log.info("bot.journal_replayed", updates=len(pending))
        metrics.set_updates_pending(self.bot_pk, self.journal.pending)

    def close(self) -> None:
        self.journal.close()

    async def take(self, batch: list[dict[str, Any]], *, polled: bool = False) -> int:
        """Hand raw updates to the engine: the fast path, else journal and PTB's queue.

        Returns how many were malformed (logged and left out: Telegram would only
        send them again). `polled`: a getUpdates batch, whose ids the journal keeps.
        """
        raws: list[dict[str, Any]] = []
        updates: list[Update] = []
        malformed = 0
        for raw in batch:
            if self.recent.seen(raw["update_id"]):
                continue  # Telegram re-sent it: a webhook retry, an unconfirmed offset
            metrics.observe_update(self.bot_pk, raw)
            if self.fast_path is not None and self.fast_path(self.engine, raw):
                # Decided and acted on already: nothing is left to journal.
                if self.on_decided is not None:
                    self.on_decided()
                metrics.record_update(self.bot_pk, update_type(raw))
                continue
            update = build_update(raw, self.application, self.log)
            if update is None:
                malformed += 1
            else:
                raws.append(raw)
                updates.append(update)
        # Durable before this returns: the caller confirms the batch to Telegram next.
        self.journal.append(raws, [raw["update_id"] for raw in batch] if polled else None)
        if updates:
            for update in updates:
                await self.application.update_queue.put(update)
            metrics.set_updates_pending(self.bot_pk, self.journal.pending)
        return malformed

    async def note_outage(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.retries.note(update, context)

    def done(self, update: object, finished: bool) -> None:
        """The processor finished (or, past the drain deadline, cancelled) an update."""
        if not finished or not isinstance(update, Update):
            return  # cancelled: it stays journaled for the next start
        if self.retries.retry_if_failed(update):
            return  # it stays journaled meanwhile
        self.journal.done([update.update_id])
        metrics.set_updates_pending(self.bot_pk, self.journal.pending)


FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


class PollRequest(BaseRequest):
    """getUpdates over one aiohttp connection, with PTB's answers and errors.

    The poller waits for each getUpdates (and the batch's append) before the
    next, so the client's own cost is paid once per 100 updates on the critical
    path: PTB's httpx stack took ~2.3 ms per call against the emulator where
    aiohttp takes ~1.0 ms (benchmarks/scale.py prints both stages), with no
    thread hop per call (`_proxy`), the form sent as bytes and the answer parsed
    by ujson. PTB's `BaseRequest.post` still maps statuses to its errors
    (InvalidToken, Conflict, RetryAfter...); a timeout is TimedOut, any other
    failure NetworkError.
    """

    def __init__(self, read_timeout: float = POLL_TIMEOUT_SECONDS + 10) -> None:
        self._read_timeout = read_timeout
        self._session: Any = None
        # URL -> the proxy the environment names for it (None: direct), read once.
        self._proxies: dict[str, Any] = {}

    @property
    def read_timeout(self) -> float:
        return self._read_timeout

    async def initialize(self) -> None:
        import aiohttp

        if self._session is None or self._session.closed:
            # Not trust_env: aiohttp would then read ~/.netrc and the proxy variables in
            # a thread on every request (two thread hops, 0.7-1.5 ms of each getUpdates
            # under load); `_proxy` reads the proxy once, as PTB's httpx client does.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None,
                         connect_timeout: Any = None, pool_timeout: Any = None,
                         ) -> tuple[int, bytes]:
        import aiohttp

        if self._session is None:
            await self.initialize()
        read = read_timeout if isinstance(read_timeout, int | float) else self._read_timeout
        timeout = aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=read)
        # The form as bytes: aiohttp's FormData for a dict cost ~0.09 ms more a call.
        data = (request_data.url_encoded_parameters().encode()
                if request_data is not None else None)
        try:
            proxy, proxy_auth = await self._proxy(url)
            async with self._session.request(method, url, data=data, timeout=timeout,
                                             headers=FORM_HEADERS if data else None,
                                             proxy=proxy, proxy_auth=proxy_auth) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut("getUpdates timed out") from exc
        except aiohttp.ClientError as exc:
            # The type only: aiohttp's messages may carry the URL, which holds the token.
            raise NetworkError(f"getUpdates failed: {type(exc).__name__}") from exc

    @staticmethod
    def parse_json_payload(payload: bytes) -> Any:
        """PTB's parsing with ujson (0.11 ms against json's 0.20 ms for 100 updates, on
        the critical path of every batch); json where ujson is missing. Invalid JSON is
        PTB's TelegramError, without logging the payload."""
        decoded = payload.decode("utf-8", "replace")
        try:
            return _ujson.loads(decoded) if _ujson is not None else json.loads(decoded)
        except ValueError as exc:
            raise TelegramError("Invalid server response") from exc

    async def _proxy(self, url: str) -> tuple[Any, Any]:
        """(proxy, its credentials) that HTTP(S)_PROXY and NO_PROXY name for `url`, or
        (None, None): read on the first request, as httpx reads them once. The poller
        asks for one URL only (its getUpdates)."""
        found = self._proxies.get(url)
        if found is None:
            from aiohttp.helpers import get_env_proxy_for_url
            from yarl import URL

            try:
                found = await asyncio.to_thread(get_env_proxy_for_url, URL(url).origin())
            except LookupError:
                found = (None, None)
            self._proxies[url] = found
        return found


class Poller:
    """Our own getUpdates loop; PTB's Updater would build every Update first.

    Raw dicts reach the fast path before any PTB object is built (building one
    costs ~100 µs), a revoked token surfaces as InvalidToken we can act on, and
    fetching waits while too many updates are unhandled (`_wait_for_room`).
    getUpdates goes through `PollRequest`, the other calls through the bot's own.
    """

    def __init__(
        self,
        application: Application,
        consumer: UpdateConsumer,
        *,
        stop: asyncio.Event,
        allowed_updates: Sequence[str],
        max_pending: int,
        once: bool = False,
        log: Any = logger,
    ) -> None:
        self.application = application
        self.consumer = consumer
        self.stop = stop
        self.allowed_updates = list(allowed_updates)
        self.max_pending = max_pending
        self.once = once
        self.log = log
        # The next getUpdates offset: asking with it confirms everything below it.
        self.offset: int | None = None
        self.request = PollRequest()

    async def run(self) -> None:
        """getUpdates until stopped; raises InvalidToken when Telegram refuses the token."""
        try:
            await self._run()
        finally:
            await self.request.shutdown()

    async def _run(self) -> None:
        bot = self.application.bot
        await bot.delete_webhook(drop_pending_updates=False)
        failures = 0
        while not self.stop.is_set():
            await self._wait_for_room()
            timeout = 0 if self.once else POLL_TIMEOUT_SECONDS
            try:
                batch = await self._get_updates(timeout)
            except InvalidToken:
                raise
            except RetryAfter as exc:
                await sleep_unless(self.stop, retry_after_seconds(exc))
                continue
            except (Conflict, TimedOut, TelegramError) as exc:
                # One line per retry, with the reason; the traceback says nothing more.
                failures += 1
                delay = 0.0 if isinstance(exc, TimedOut) else min(30.0, 2.0**failures)
                event = "bot.poll_conflict" if isinstance(exc, Conflict) else "bot.poll_failed"
                self.log.warning(event, error=describe_error(exc), retry_in=delay)
                await sleep_unless(self.stop, delay)
                continue
            failures = 0
            if batch:
                # Taken (journaled, decided, or in the bus) first; only then does the
                # offset move, so the next getUpdates confirms this batch to Telegram.
                # On the bus `take` is one round trip to Redis, so the next getUpdates
                # goes out at once: polling is bounded by Telegram's round trip alone.
                try:
                    await self.consumer.take(batch, polled=True)
                except BusUnavailable as exc:
                    # Not confirmed: the same offset fetches the batch again.
                    self.log.warning("bot.bus_unavailable", error=str(exc), retry_in=1.0)
                    await sleep_unless(self.stop, 1.0)
                    continue
                self.offset = batch[-1]["update_id"] + 1
            elif self.once:
                return

    async def _get_updates(self, poll_seconds: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "timeout": poll_seconds,
            "limit": 100,
            "allowed_updates": self.allowed_updates,
        }
        if self.offset is not None:
            params["offset"] = self.offset
        # Raw JSON: Bot.get_updates builds every Update (~100 µs each) before the
        # fast path could skip it.
        data = RequestData([RequestParameter.from_input(k, v) for k, v in params.items()])
        result = await self.request.post(f"{self.application.bot.base_url}/getUpdates", data,
                                         read_timeout=poll_seconds + 10)
        if not isinstance(result, list):
            raise NetworkError(f"getUpdates answered {type(result).__name__}, not a list")
        return [item for item in result if isinstance(item, dict) and "update_id" in item]

    async def _wait_for_room(self) -> None:
        """Back-pressure: fetch no more while too many updates wait to be handled.

        Updates Telegram still holds cost us nothing and stay unconfirmed; updates
        fetched past what the handlers keep up with would only grow the journal and
        memory (a raid can send thousands a second), and be lost to nobody sooner.
        """
        # Polling: the count changes inside PTB's tasks, which signal nothing.
        while self.consumer.pending >= self.max_pending:  # noqa: ASYNC110
            if self.stop.is_set():
                return
            await asyncio.sleep(0.05)

    async def confirm(self, *, force: bool = False) -> None:
        """Confirm the last batch to Telegram once nothing is left to handle.

        While the consumer still holds updates they stay unconfirmed too, so a
        process on another host that takes this bot over receives them again.
        `force`: the consumer is the shared bus, where they are safe already.
        """
        if self.offset is None or (self.consumer.pending and not force):
            return
        with contextlib.suppress(Exception):
            await self.application.bot._post(
                "getUpdates", {"offset": self.offset, "limit": 1, "timeout": 0}
            )


class WebhookIntake:
    """setWebhook with a per-bot URL and secret; deliveries arrive through the
    process's `WebhookReceivers`, which the ASGI route (`bots.webhook`) reads.

    The route answers 200 only after `deliver()` returned, so the webhook keeps
    the same promise as polling. `close()` unregisters: Telegram's retries then get a
    503 and land after the restart instead of on a bot that stopped.
    """

    def __init__(
        self,
        application: Application,
        consumer: UpdateConsumer,
        receivers: WebhookReceivers,
        *,
        telegram_id: int,
        base_url: str,
        stop: asyncio.Event,
        allowed_updates: Sequence[str],
        token_check_interval: float,
        max_connections: int = 40,
        log: Any = logger,
    ) -> None:
        self.application = application
        self.consumer = consumer
        self.receivers = receivers
        self.max_connections = max_connections
        self.telegram_id = telegram_id
        self.base_url = base_url
        self.stop = stop
        self.allowed_updates = list(allowed_updates)
        self.token_check_interval = token_check_interval
        self.log = log

    async def run(self) -> None:
        self.receivers.register(self.telegram_id, self.deliver)
        await self.application.bot.set_webhook(
            url=webhook_url(self.telegram_id, self.base_url),
            secret_token=webhook_secret(self.telegram_id),
            allowed_updates=self.allowed_updates,
            max_connections=self.max_connections,
        )
        await self._watch_token()

    async def _watch_token(self) -> None:
        """No polling notices a revoked token, so ask now and then."""
        while not self.stop.is_set():
            await sleep_unless(self.stop, self.token_check_interval)
            try:
                await self.application.bot.get_me()
            except InvalidToken:
                raise
            except TelegramError as exc:
                self.log.warning("bot.get_me_failed", error=describe_error(exc))

    async def deliver(self, raw: dict[str, Any]) -> None:
        """One delivery: taken (journaled or decided) before the route answers 200.

        Raises ValueError when it is not an update PTB can build (the route answers 400).
        """
        if await self.consumer.take([raw]):
            raise ValueError("not an update")

    def close(self) -> None:
        self.receivers.unregister(self.telegram_id)
