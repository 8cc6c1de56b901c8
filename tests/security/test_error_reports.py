"""Attack: read secrets out of the error reports sent to Sentry.

Four real failures (a websocket consumer, the webhook endpoint, a Django view and
the engine's Bot API client) are sent through sentry-sdk, configured exactly as
production configures it, into a transport that records envelopes instead of
sending them. About twenty secrets are planted where they used to leak: bytes in
ASGI scope headers, frame variables, request headers, cookies, query strings,
breadcrumbs, extra and contexts. None may reach a recorded event.

The same failures are first recorded with scrubbing off, to prove every planted
secret really reaches an event when nothing takes it out.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import sentry_sdk
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import CookieMiddleware
from channels.testing import WebsocketCommunicator
from cryptography.fernet import Fernet
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path
from sentry_sdk.scrubber import EventScrubber
from sentry_sdk.transport import Transport
from telegram import Bot
from telegram.error import NetworkError
from telegram.request import HTTPXRequest

from bots import webhook
from nezuko.observability import sentry_options
from tests.factories import fake_token

pytestmark = pytest.mark.django_db


class RecordingTransport(Transport):
    """Keeps events instead of sending them: Sentry is never reached from tests."""

    def __init__(self, options: dict | None = None) -> None:
        super().__init__(options)
        self.events: list[dict] = []

    def capture_envelope(self, envelope) -> None:
        for item in envelope.items:
            if item.type == "event":
                self.events.append(item.payload.json)


@dataclass(repr=False)
class Planted:
    """Every secret a failure below carries, by name (the name shows in a failure)."""

    values: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        # This object is a frame variable of every failure: its repr must not list them.
        return f"<{len(self.values)} planted secrets>"

    def __call__(self, name: str, value: str) -> str:
        self.values[name] = value
        return value


def _session_key() -> str:
    # Django's alphabet and length for session keys.
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32))


# --- the four failures ---------------------------------------------------------------


class FailingFeedConsumer(AsyncWebsocketConsumer):
    """Fails in connect like a consumer bug would, with the scope in its frame."""

    async def connect(self) -> None:
        headers = self.scope["headers"]  # noqa: F841 (a frame variable Sentry records)
        raise RuntimeError("live feed consumer failed")


async def websocket_error(plant: Planted) -> None:
    session = plant("websocket sessionid", _session_key())
    csrf = plant("websocket csrftoken", secrets.token_urlsafe(24).replace("-", "A") + "Zz9")
    bearer = plant("websocket API token", "nzk_" + secrets.token_urlsafe(32))
    communicator = WebsocketCommunicator(
        CookieMiddleware(FailingFeedConsumer.as_asgi()), "/ws/feed/",
        headers=[(b"cookie", f"sessionid={session}; csrftoken={csrf}".encode()),
                 (b"authorization", f"Bearer {bearer}".encode()),
                 (b"origin", b"http://testserver")],
    )
    try:
        await communicator.connect()
        await communicator.wait()
    except RuntimeError:
        sentry_sdk.capture_exception()


async def webhook_error(plant: Planted) -> None:
    bot_id = 7100000001
    secret = plant("per-bot webhook secret", webhook.webhook_secret(bot_id))

    async def broken_receiver(update: dict) -> None:
        raise RuntimeError("the bot failed on this update")

    receivers = webhook.WebhookReceivers()
    receivers.register(bot_id, broken_receiver)
    try:
        with sentry_sdk.new_scope() as scope:
            # What an ASGI integration attaches: the raw headers, as bytes.
            scope.set_extra("headers", [(b"x-telegram-bot-api-secret-token", secret.encode())])
            scope.set_context("webhook", {"secret_header": secret.encode(),
                                          "path": webhook.webhook_path(bot_id)})
            body = b'{"update_id": 1}'
            request = {"type": "http", "method": "POST", "path": webhook.webhook_path(bot_id),
                       "headers": [(b"x-telegram-bot-api-secret-token", secret.encode()),
                                   (b"content-length", str(len(body)).encode())]}

            async def receive() -> dict:
                return {"type": "http.request", "body": body, "more_body": False}

            # The route logs the receiver's failure with its traceback (the frame holds
            # the expected secret) and answers 200; the log record becomes the event.
            status, _ = await webhook.answer(receivers, request, receive)
            assert status == 200
    finally:
        receivers.unregister(bot_id)


def failing_view(request: HttpRequest, token: str) -> HttpResponse:
    password = request.POST.get("password")  # noqa: F841 (a frame variable Sentry records)
    authorization = request.headers.get("Authorization")  # noqa: F841
    cookies = request.COOKIES  # noqa: F841
    telegram_header = request.headers.get("X-Telegram-Bot-Api-Secret-Token")  # noqa: F841
    raise RuntimeError("a view failed")


urlpatterns = [path("login/link/<str:token>/", failing_view)]


def view_error(plant: Planted) -> None:
    session = plant("view sessionid", _session_key())
    csrf = plant("view csrftoken", "Q" + secrets.token_urlsafe(30).replace("-", "x") + "7z")
    api_token = plant("API token", "nzk_" + secrets.token_urlsafe(32))
    password = plant("staff password", "hunter2-" + secrets.token_hex(6))
    link = plant("login link token", secrets.token_urlsafe(32))
    widget_hash = plant("widget hash", secrets.token_hex(32))
    forged = plant("another bot's webhook secret", webhook.webhook_secret(7100000002))
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {api_token}",
                    HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=forged)
    client.cookies["sessionid"] = session
    client.cookies["csrftoken"] = csrf
    logging.getLogger("nezuko.test").warning(f"login link opened: {link}")
    with override_settings(ROOT_URLCONF=__name__):
        response = client.post(f"/login/link/{link}/?id=1&hash={widget_hash}",
                               {"password": password, "username": "root"})
    assert response.status_code == 500


async def engine_error(plant: Planted) -> None:
    token = plant("bot token", fake_token())
    plant("bot token secret part", token.split(":")[1])
    encryption_keys = [plant("Fernet key 1", Fernet.generate_key().decode()),  # noqa: F841
                       plant("Fernet key 2", Fernet.generate_key().decode())]
    database_url = "postgres://nezuko:{}@db.internal/nezuko".format(  # noqa: F841
        plant("database password", "pw" + secrets.token_hex(8)))
    redis_url = "redis://:{}@cache.internal:6379/0".format(  # noqa: F841
        plant("Redis password", "rp" + secrets.token_hex(8)))
    otp_secret = plant("TOTP secret", secrets.token_hex(20))  # noqa: F841
    secret_key = plant("Django SECRET_KEY", secrets.token_urlsafe(40))  # noqa: F841
    sentry_sdk.add_breadcrumb(category="telegram", message=f"calling getMe for {token}",
                              data={"url": f"http://127.0.0.1:9/bot{token}/getMe"})
    sentry_sdk.set_extra("webhook_secret", plant("secret in extra", secrets.token_hex(16)))
    bot = Bot(token, base_url="http://127.0.0.1:9/bot",
              request=HTTPXRequest(connect_timeout=2, read_timeout=2))
    try:
        await bot.get_me()  # nothing listens on port 9: a NetworkError from deep in PTB
    except NetworkError:
        sentry_sdk.capture_exception()


# --- the harness -----------------------------------------------------------------------


@pytest.fixture
def record() -> Iterator[Callable[[bool], list[dict]]]:
    transports: list[RecordingTransport] = []

    def start(scrubbing: bool) -> list[dict]:
        transport = RecordingTransport()
        transports.append(transport)
        options = sentry_options("https://public@sentry.invalid/1", "test")
        if not scrubbing:
            # Sentry's own key denylist off too: the baseline shows what reaches an event.
            options |= {"before_send": None, "before_breadcrumb": None,
                        "event_scrubber": EventScrubber(denylist=[], pii_denylist=[]),
                        "send_default_pii": True, "max_request_body_size": "always"}
        sentry_sdk.init(**options, transport=transport)
        return transport.events

    yield start
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # back to a disabled client


async def _run_every_failure(plant: Planted) -> None:
    from asgiref.sync import sync_to_async

    await websocket_error(plant)
    await webhook_error(plant)
    await sync_to_async(view_error)(plant)
    await engine_error(plant)
    sentry_sdk.flush()


WEBHOOK_SECRET = "whs-" + secrets.token_hex(16)


@pytest.mark.django_db(transaction=True)
@override_settings(WEBHOOK_SECRET=WEBHOOK_SECRET)
async def test_no_planted_secret_reaches_a_sentry_event(record) -> None:
    # Without the scrubber every planted secret is in the events: the planting works.
    plant = Planted()
    raw = record(scrubbing=False)
    await _run_every_failure(plant)
    raw_text = json.dumps(raw)
    assert len(raw) == 4
    missing = [name for name, value in plant.values.items() if value not in raw_text]
    assert missing == [], missing

    # With production's configuration, none is.
    plant = Planted()
    events = record(scrubbing=True)
    await _run_every_failure(plant)
    sent = json.dumps(events)
    assert len(events) == 4, [e.get("exception", {}).get("values", [{}])[-1] for e in events]
    assert len(plant.values) >= 20
    leaked = {name: sent[max(0, sent.find(value) - 80):sent.find(value) + len(value) + 20]
              for name, value in plant.values.items() if value in sent}
    assert leaked == {}
    assert WEBHOOK_SECRET not in sent

    # The events are still useful: the failures, their frames and the redaction marks.
    for message in ("live feed consumer failed", "the bot failed on this update",
                    "a view failed", "NetworkError"):
        assert message in sent
    assert '"vars"' in sent and "sessionid=[Filtered]" in sent and "[Filtered]" in sent
    assert all("breadcrumbs" in e for e in events)


def test_a_totp_seed_in_a_template_context_or_an_otpauth_url_is_scrubbed():
    from nezuko.observability import scrub

    seed = "HUFYQ2ZNMQ7TX5UKLPG3R4BWJE6SCV2A"
    hex_key = "3d0b8a3c9e1f7a2b4c5d6e7f8091a2b3c4d5e6f7"
    frame = {
        "context": f"[{{'secret': '{seed}', 'qr': '...'}}]",
        "url": f"otpauth://totp/Nezuko:root?secret={seed}&issuer=Nezuko",
        "device": f"TOTPDevice(key: '{hex_key}')",
        "alone": f"seed {seed} shown",
    }
    scrubbed = repr(scrub(frame))
    # The enrolment page's context, the QR code's URL and the stored key: none survives.
    assert seed not in scrubbed and hex_key not in scrubbed
    # Ordinary words and request ids stay readable.
    assert "seed" in scrubbed and "shown" in scrubbed
