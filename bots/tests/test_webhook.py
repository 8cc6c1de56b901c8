"""The webhook route: who gets in, what gets 400, and that the bot receives the update."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bots import webhook

BOT_ID = 123456789
OTHER_BOT_ID = 987654321

# The table runbot's composition root shares between the route and its bots.
receivers = webhook.WebhookReceivers()


@pytest.fixture
def received(settings) -> list[dict[str, Any]]:
    settings.WEBHOOK_SECRET = "webhook-secret-for-tests"
    settings.WEBHOOK_URL = "https://nezuko.example.com"
    got: list[dict[str, Any]] = []

    async def receiver(update: dict[str, Any]) -> None:
        got.append(update)

    receivers.register(BOT_ID, receiver)
    yield got
    receivers.unregister(BOT_ID)


async def django_stand_in(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=webhook.asgi_router(django_stand_in, receivers))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def update(update_id: int = 1) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 5,
            "date": 1_700_000_000,
            "chat": {"id": -100123, "type": "supergroup", "title": "Cats"},
            "from": {"id": 42, "is_bot": False, "first_name": "Alice"},
            "text": "hello",
        },
    }


def headers(secret: str | None) -> dict[str, str]:
    return {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}


async def post(body: bytes | dict, secret: str | None, bot_id: int = BOT_ID) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with client() as http:
        return await http.post(
            webhook.webhook_path(bot_id), content=content, headers=headers(secret)
        )


async def test_it_hands_an_update_with_the_right_secret_to_the_bot(received):
    response = await post(update(7), webhook.webhook_secret(BOT_ID))

    assert response.status_code == 200
    assert [u["update_id"] for u in received] == [7]


async def test_it_refuses_a_wrong_or_missing_secret(received):
    # Another bot's secret is a wrong secret too.
    for secret in (None, "", "nope", webhook.webhook_secret(OTHER_BOT_ID)):
        response = await post(update(), secret)
        assert response.status_code == 403, secret
    assert received == []


async def test_the_secret_differs_per_bot_and_follows_webhook_secret(settings, received):
    first = webhook.webhook_secret(BOT_ID)
    assert first != webhook.webhook_secret(OTHER_BOT_ID)
    settings.WEBHOOK_SECRET = "rotated"
    assert webhook.webhook_secret(BOT_ID) != first
    # Telegram's rule for secret_token: 1-256 characters of A-Z, a-z, 0-9, _ and -.
    assert first.isalnum() and 1 <= len(first) <= 256


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", b'{"message": {}}', b'{"update_id": "7"}', b"\xff\xfe"],
)
async def test_it_answers_400_to_a_body_that_is_not_an_update(received, body):
    response = await post(body, webhook.webhook_secret(BOT_ID))

    assert response.status_code == 400
    assert received == []


async def test_it_answers_413_to_an_oversized_body(received):
    big = {"update_id": 1, "padding": "x" * (webhook.MAX_BODY_BYTES + 1)}
    response = await post(big, webhook.webhook_secret(BOT_ID))

    assert response.status_code == 413
    assert received == []


@pytest.mark.django_db(transaction=True)
async def test_it_answers_503_for_a_bot_this_process_does_not_run(received):
    from asgiref.sync import sync_to_async

    from tests.factories import fake_token, make_bot

    await sync_to_async(make_bot)(token=fake_token(OTHER_BOT_ID))
    # Telegram retries non-2xx answers, so the update is not lost.
    response = await post(update(), webhook.webhook_secret(OTHER_BOT_ID), bot_id=OTHER_BOT_ID)
    assert response.status_code == 503


@pytest.mark.parametrize(
    ("error", "status"),
    [
        # PTB could not build an Update from it: malformed, so a 400.
        (ValueError("not an Update"), 400),
        # Any other failure is never a 500: Telegram would retry it forever,
        # holding back the bot's later updates.
        (RuntimeError("boom"), 200),
        # It could not be journaled (the disk is full): a 200 would lose it, so
        # Telegram must try again.
        (OSError(28, "No space left on device"), 503),
    ],
)
async def test_a_failing_receiver_is_never_a_500(settings, error, status):
    settings.WEBHOOK_SECRET = "webhook-secret-for-tests"

    async def failing(_update: dict[str, Any]) -> None:
        raise error

    receivers.register(BOT_ID, failing)
    try:
        response = await post(update(), webhook.webhook_secret(BOT_ID))
    finally:
        receivers.unregister(BOT_ID)
    assert response.status_code == status


async def test_it_is_off_without_webhook_secret(settings):
    settings.WEBHOOK_SECRET = ""
    response = await post(update(), "anything")
    assert response.status_code == 404


async def test_it_only_accepts_post(received):
    async with client() as http:
        response = await http.get(webhook.webhook_path(BOT_ID))
    assert response.status_code == 405


async def test_other_paths_go_to_django():
    async with client() as http:
        response = await http.get("/healthz")
    assert (response.status_code, response.text) == (299, "django")
