"""The Telegram webhook endpoint: a raw ASGI route in front of Django.

Django's ASGI handler costs ~0.7 ms a request (two thread hops), capping a
webhook view near 900 updates/s; this route answers from the event loop and
never touches Django, the ORM or a thread. `nezuko.asgi` mounts it with
`asgi_router(django_app)`.

`POST {WEBHOOK_PREFIX}<telegram id>`:

* 404 when webhooks are not configured (no WEBHOOK_SECRET) or the path is not
  a bot id; 405 for anything but POST;
* 403 unless `X-Telegram-Bot-Api-Secret-Token` equals that bot's secret
  (HMAC of WEBHOOK_SECRET and the bot id, compared in constant time);
* 400 for a body that is too large, not JSON, or not an update;
* 503 when the bot is not running in this process: Telegram retries later;
* 200 once the update is handed to the bot, including updates it will ignore,
  so Telegram stops retrying.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from django.conf import settings

logger = structlog.get_logger(__name__)

WEBHOOK_PREFIX = "/telegram/webhook/"
SECRET_HEADER = b"x-telegram-bot-api-secret-token"
# Updates are a few kilobytes; anything near this is not from Telegram.
MAX_BODY_BYTES = 1_048_576

Receiver = Callable[[dict[str, Any]], Awaitable[None]]
Scope = dict[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]
]

# telegram id -> the running bot's entry point, filled by the supervisor.
_receivers: dict[int, Receiver] = {}


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


def register(telegram_id: int, receiver: Receiver) -> None:
    _receivers[telegram_id] = receiver


def unregister(telegram_id: int) -> None:
    _receivers.pop(telegram_id, None)


def parse_update(body: bytes) -> dict[str, Any] | None:
    """The update as a dict, or None when the body is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        return None
    return data


async def handle(path_id: str, secret: bytes | None, body: bytes | None) -> tuple[int, str]:
    """Decide the answer for one webhook request. `body` None means it was too large."""
    if not settings.WEBHOOK_SECRET or not path_id.isdigit():
        return 404, "not found"
    telegram_id = int(path_id)
    expected = webhook_secret(telegram_id).encode()
    if secret is None or not hmac.compare_digest(secret, expected):
        logger.warning("webhook.forbidden", bot_telegram_id=telegram_id, had_secret=bool(secret))
        return 403, "forbidden"
    if body is None:
        return 400, "body too large"
    update = parse_update(body)
    if update is None:
        return 400, "not an update"
    receiver = _receivers.get(telegram_id)
    if receiver is None:
        return 503, "bot not running here"
    try:
        await receiver(update)
    except ValueError:
        # PTB could not build an Update from it: malformed, not our failure.
        logger.warning("webhook.bad_update", bot_telegram_id=telegram_id, exc_info=True)
        return 400, "not an update"
    return 200, "ok"


async def read_body(receive: Callable[[], Awaitable[dict]], limit: int) -> bytes | None:
    """The request body, or None as soon as it passes `limit` bytes."""
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


async def webhook_app(
    scope: Scope,
    receive: Callable[[], Awaitable[dict]],
    send: Callable[[dict], Awaitable[None]],
) -> None:
    """The ASGI application for paths under WEBHOOK_PREFIX."""
    path_id = scope["path"][len(WEBHOOK_PREFIX) :].rstrip("/")
    if scope["method"] != "POST":
        status, text = 405, "method not allowed"
    else:
        secret = dict(scope.get("headers") or []).get(SECRET_HEADER)
        length = _content_length(scope)
        body = None if length is not None and length > MAX_BODY_BYTES else b""
        if body is not None:
            body = await read_body(receive, MAX_BODY_BYTES)
        try:
            status, text = await handle(path_id, secret, body)
        except Exception:
            # Never a 500 for Telegram to retry forever: log it and answer 200.
            logger.exception("webhook.receiver_failed", path_id=path_id)
            status, text = 200, "ok"
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


def asgi_router(app: ASGIApp) -> ASGIApp:
    """Serve webhook paths here and pass everything else to `app` (Django)."""

    async def router(
        scope: Scope,
        receive: Callable[[], Awaitable[dict]],
        send: Callable[[dict], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and scope["path"].startswith(WEBHOOK_PREFIX):
            await webhook_app(scope, receive, send)
        else:
            await app(scope, receive, send)

    return router
