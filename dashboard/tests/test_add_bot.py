"""Adding a bot on the dashboard: getMe over the wire, stored encrypted, never shown."""

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from bots.models import AuditLog, BotInstance
from bots.registration import ALREADY_REGISTERED, aregister_bot

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]


async def test_a_valid_token_is_checked_stored_and_never_shown_again(emulator, world):
    fresh = emulator.create_bot(username="fresh_bot")
    client = await sync_to_async(world.client)(world.alice)

    response = await sync_to_async(client.post)(
        reverse("dashboard:bot-add"), {"token": fresh.token}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Added @fresh_bot" in html
    # The token is not in the page, and the form is empty again.
    assert fresh.token not in html and fresh.token.split(":")[1] not in html
    bot = await BotInstance.objects.aget(username="fresh_bot")
    assert bot.owner_id == world.alice.pk
    assert await AuditLog.objects.filter(action="bot.registered").acount() == 1
    assert emulator.calls_named("getMe")


async def test_a_token_telegram_rejects_is_an_inline_error(emulator, world):
    client = await sync_to_async(world.client)(world.alice)
    response = await sync_to_async(client.post)(
        reverse("dashboard:bot-add"), {"token": "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'id="token-errors"' in html and "Telegram rejected this token" in html
    assert "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" not in html
    assert not await BotInstance.objects.filter(username="").aexists()


async def test_malformed_input_never_reaches_telegram(emulator, world):
    client = await sync_to_async(world.client)(world.alice)
    response = await sync_to_async(client.post)(
        reverse("dashboard:bot-add"), {"token": "not a token"}, HTTP_HX_REQUEST="true")
    assert "does not look like a bot token" in response.content.decode()
    assert not emulator.calls_named("getMe")


async def test_a_bot_runbot_registered_is_refused_with_the_registrations_message(
    emulator, world
):
    # runbot registered it from BOT_TOKEN; the dashboard goes through the same function.
    fresh = emulator.create_bot(username="fresh_bot")
    await aregister_bot(fresh.token, again=True)
    client = await sync_to_async(world.client)(world.alice)

    response = await sync_to_async(client.post)(
        reverse("dashboard:bot-add"), {"token": fresh.token}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert ALREADY_REGISTERED in html and fresh.token.split(":")[1] not in html
    assert await BotInstance.objects.filter(username="fresh_bot").acount() == 1
    # Telegram was asked first: only a valid token learns that its bot is registered.
    assert len(emulator.calls_named("getMe")) == 2


async def test_a_wrong_token_for_a_registered_bot_learns_nothing_of_it(emulator, world):
    fresh = emulator.create_bot(username="fresh_bot")
    await aregister_bot(fresh.token, again=True)
    client = await sync_to_async(world.client)(world.alice)
    guess = fresh.token.split(":")[0] + ":" + "A" * 35

    response = await sync_to_async(client.post)(
        reverse("dashboard:bot-add"), {"token": guess}, HTTP_HX_REQUEST="true")
    # Telegram's refusal, not "already registered": the id alone is no oracle.
    html = response.content.decode()
    assert ALREADY_REGISTERED not in html and "rejected" in html
