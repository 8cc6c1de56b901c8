"""The Telegram webhook endpoint: a raw ASGI route in front of Django.

Django's ASGI handler costs ~0.7 ms a request (two thread hops), capping a
webhook view near 900 updates/s; this route answers from the event loop, and
only an authenticated request for a bot not running here touches the ORM.
`nezuko.asgi` mounts it with `asgi_router(django_app, receivers)`, where
`receivers` is the `WebhookReceivers` the composition root also hands to the
runtime (`RuntimeOptions.webhook_receivers`): each running bot registers its
intake there, so the route and the bots of one process share one table.

`POST {WEBHOOK_PREFIX}<telegram id>`, checked in this order, cheapest first:

* 404 when webhooks are not configured (no WEBHOOK_SECRET) or the path is not
  a bot id (not digits, longer than any Telegram id); 405 for anything but POST;
* 403 unless `X-Telegram-Bot-Api-Secret-Token` equals that bot's secret
  (HMAC of WEBHOOK_SECRET and the bot id, compared in constant time), before
  any of the body is read;
* 413 for a body over MAX_BODY_BYTES: at once from Content-Length, or as soon
  as the running count passes the limit; no more than the limit is buffered;
* 400 for a body that is not JSON or not an update;
* 503 when a configured bot does not run in this process (and there is no update
  bus), or its update could not be journaled (bots.journal) or appended to the bus
  (bots.bus): Telegram retries later;
  404 when no configured bot has that id;
* 200 once the update is handed to the bot, including updates it will ignore,
  so Telegram stops retrying.

daphne receives a whole body before it calls any ASGI app, so
`limit_daphne_request_bodies()` (installed by `nezuko.asgi` under daphne)
applies the same limit while Twisted receives it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from django.conf import settings

from bots import metrics

logger = structlog.get_logger(__name__)

WEBHOOK_PREFIX = "/telegram/webhook/"
SECRET_HEADER = b"x-telegram-bot-api-secret-token"
# Updates are a few kilobytes; anything near this is not from Telegram.
MAX_BODY_BYTES = 1_048_576
# Telegram ids are 64-bit integers: 19 digits at most.
MAX_ID_DIGITS = 19
# How long a bot id, once found configured, is appended to the bus without asking again.
KNOWN_BOT_SECONDS = 60.0

Receiver = Callable[[dict[str, Any]], Awaitable[None]]
Scope = dict[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]
]


class WebhookReceivers:
    """The bots running in this process that take webhook deliveries, by Telegram id.

    One table per process, created by the composition root and shared by the ASGI
    route (reads) and the bots' update sources (register on start, unregister on
    drain, so Telegram's retries land after a restart instead of on a stopped bot).

    With an update bus (`bots.bus`), a delivery for a bot not running here is
    appended to the bus instead, so any web worker takes any bot's webhook; the
    route answers 200 once the append returned, 503 when the bus refused it.
    """

    def __init__(self, bus: Any = None) -> None:
        self._by_id: dict[int, Receiver] = {}
        self.bus = bus
        # Telegram ids known to be configured bots, and until when (monotonic).
        self._known: dict[int, float] = {}
        self._appenders: dict[int, Any] = {}

    def register(self, telegram_id: int, receiver: Receiver) -> None:
        self._by_id[telegram_id] = receiver

    def unregister(self, telegram_id: int) -> None:
        self._by_id.pop(telegram_id, None)

    def get(self, telegram_id: int) -> Receiver | None:
        return self._by_id.get(telegram_id)

    async def on_bus(self, telegram_id: int) -> Receiver | None:
        """A receiver appending to the bus, when there is one and the bot exists.

        The bot's existence is looked up once a minute, not per delivery.
        """
        if self.bus is None:
            return None
        now = time.monotonic()
        if self._known.get(telegram_id, 0.0) < now:
            if not await _configured(telegram_id):
                return None
            self._known[telegram_id] = now + KNOWN_BOT_SECONDS
        appender = self._appenders.get(telegram_id)
        if appender is None:
            from bots.bus import GroupAppend

            appender = self._appenders[telegram_id] = GroupAppend(self.bus, str(telegram_id))
        return appender.append


def default_receivers() -> WebhookReceivers:
    """A web worker's table: on the bus when settings configure one (`bots.bus`)."""
    from bots.bus import configured_bus

    return WebhookReceivers(bus=configured_bus())


def webhook_secret(telegram_id: int) -> str:
    """The per-bot secret token: Telegram allows 1-256 characters of [A-Za-z0-9_-]."""
    key = settings.WEBHOOK_SECRET.encode()
    return hmac.new(key, f"nezuko-webhook:{telegram_id}".encode(), hashlib.sha256).hexdigest()


def webhook_path(telegram_id: int) -> str:
    return f"{WEBHOOK_PREFIX}{telegram_id}"


def webhook_url(telegram_id: int, base: str | None = None) -> str:
    """The bot's webhook URL under `base` (settings.WEBHOOK_URL by default)."""
    base = settings.WEBHOOK_URL if base is None else base
    return f"{base.rstrip('/')}{webhook_path(telegram_id)}"


def parse_update(body: bytes) -> dict[str, Any] | None:
    """The update as a dict, or None when the body is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        return None
    return data


def bot_id(path_id: str) -> int | None:
    """The Telegram id a webhook path names, or None when it cannot be one."""
    if not path_id.isascii() or not path_id.isdigit() or len(path_id) > MAX_ID_DIGITS:
        return None
    return int(path_id)


async def handle(
    receivers: WebhookReceivers, telegram_id: int, body: bytes
) -> tuple[int, str]:
    """Decide the answer for one authenticated webhook request and its whole body."""
    update = parse_update(body)
    if update is None:
        return 400, "not an update"
    receiver = receivers.get(telegram_id) or await receivers.on_bus(telegram_id)
    if receiver is None:
        if not await _configured(telegram_id):
            return 404, "not found"
        return 503, "bot not running here"
    try:
        await receiver(update)
    except ValueError:
        # PTB could not build an Update from it: malformed, not our failure.
        logger.warning("webhook.bad_update", bot_telegram_id=telegram_id, exc_info=True)
        return 400, "not an update"
    except OSError as exc:
        # Not journaled (a full or read-only disk) or the bus refused it (BusUnavailable):
        # a 200 would lose it; Telegram retries.
        logger.error("webhook.journal_failed", bot_telegram_id=telegram_id, error=str(exc))
        return 503, "try again"
    return 200, "ok"


async def _configured(telegram_id: int) -> bool:
    """Whether any bot has this id. Only authenticated requests get here, and only
    when the bot does not run in this process, so the route's hot path stays ORM-free."""
    from bots.models import BotInstance

    return await BotInstance.objects.filter(telegram_id=telegram_id).aexists()


async def read_body(receive: Callable[[], Awaitable[dict]], limit: int) -> bytes | None:
    """The request body, or None as soon as it passes `limit` bytes (the rest unread)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def answer(
    receivers: WebhookReceivers, scope: Scope, receive: Callable[[], Awaitable[dict]]
) -> tuple[int, str]:
    """The status and text for one request to the webhook route (see the module docstring)."""
    telegram_id = bot_id(scope["path"][len(WEBHOOK_PREFIX) :].rstrip("/"))
    if not settings.WEBHOOK_SECRET or telegram_id is None:
        return 404, "not found"
    if scope["method"] != "POST":
        return 405, "method not allowed"
    secret = dict(scope.get("headers") or []).get(SECRET_HEADER)
    expected = webhook_secret(telegram_id).encode()
    if secret is None or not hmac.compare_digest(secret, expected):
        logger.warning("webhook.forbidden", bot_telegram_id=telegram_id, had_secret=bool(secret))
        return 403, "forbidden"
    length = _content_length(scope)
    if length is not None and length > MAX_BODY_BYTES:
        return 413, "body too large"
    body = await read_body(receive, MAX_BODY_BYTES)
    if body is None:
        return 413, "body too large"
    try:
        return await handle(receivers, telegram_id, body)
    except Exception:
        # Never a 500 for Telegram to retry forever: log it and answer 200.
        logger.exception("webhook.receiver_failed", bot_telegram_id=telegram_id)
        return 200, "ok"


async def webhook_app(
    receivers: WebhookReceivers,
    scope: Scope,
    receive: Callable[[], Awaitable[dict]],
    send: Callable[[dict], Awaitable[None]],
) -> None:
    """The ASGI application for paths under WEBHOOK_PREFIX."""
    status, text = await answer(receivers, scope, receive)
    metrics.record_webhook(status)
    payload = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def asgi_router(app: ASGIApp, receivers: WebhookReceivers) -> ASGIApp:
    """Serve webhook paths to `receivers` and pass everything else to `app` (Django)."""

    async def router(
        scope: Scope,
        receive: Callable[[], Awaitable[dict]],
        send: Callable[[dict], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and scope["path"].startswith(WEBHOOK_PREFIX):
            await webhook_app(receivers, scope, receive, send)
        else:
            await app(scope, receive, send)

    return router


def limit_daphne_request_bodies() -> None:
    """Refuse webhook bodies over MAX_BODY_BYTES while daphne's Twisted receives them.

    daphne spools a whole request body before it calls the application, then
    queues all of it in memory at once, so a limit in the ASGI app comes too
    late: a 300 MiB chunked POST grew the process by ~300 MiB. This swaps
    daphne's request class for one that answers 413 and drops the connection
    as soon as the declared length or the running count passes the limit.
    Idempotent; import daphne before calling it (it installs Twisted's reactor).
    """
    from daphne import http_protocol

    base = http_protocol.WebRequest
    if getattr(base, "limits_webhook_bodies", False):
        return
    _cache_content_type_parsing()

    class LimitedWebRequest(base):
        limits_webhook_bodies = True
        _limited = False
        _refused = False
        _received = 0

        def gotLength(self, length: int | None) -> None:  # noqa: N802 (Twisted's name)
            # Twisted has the request line, not yet `self.path`, at this point.
            path = getattr(self.channel, "_path", b"") or b""
            self._limited = path.startswith(WEBHOOK_PREFIX.encode())
            super().gotLength(length)
            if self._limited and length is not None and length > MAX_BODY_BYTES:
                self._refuse()

        def handleContentChunk(self, data: bytes) -> None:  # noqa: N802
            if self._refused:
                return
            self._received += len(data)
            if self._limited and self._received > MAX_BODY_BYTES:
                self._refuse()
                return
            super().handleContentChunk(data)

        def _refuse(self) -> None:
            self._refused = True
            # The client may still be sending: answer, then stop reading and close.
            self.channel.transport.write(
                b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: text/plain; charset=utf-8"
                b"\r\ncontent-length: 14\r\nconnection: close\r\n\r\nbody too large"
            )
            self.channel.loseConnection()

    http_protocol.WebRequest = LimitedWebRequest


def _cache_content_type_parsing() -> None:
    """Twisted parses every POST's Content-Type with the email package (~0.1 ms, a
    tenth of a webhook request's cost in daphne); Telegram sends the same one
    each time, so remember the answers (a pure function of the header's bytes)."""
    import functools

    from twisted.web import http

    parse = getattr(http, "_parseContentType", None)
    if parse is not None and not hasattr(parse, "cache_info"):
        http._parseContentType = functools.lru_cache(maxsize=64)(parse)
