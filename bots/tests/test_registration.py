"""bots.registration: the one way a bot token gets in (runbot, dashboard, API, admin)."""

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from bots.audit import Actor
from bots.models import AuditLog, BotInstance
from bots.registration import ALREADY_REGISTERED, TokenRejected, aregister_bot
from tests.factories import fake_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


async def test_a_token_is_checked_with_get_me_and_stored_encrypted(emulator):
    shop = emulator.create_bot(username="shop_bot", first_name="Shop")

    bot = await aregister_bot(f"  {shop.token}\n")

    stored = await BotInstance.objects.aget()
    assert stored.pk == bot.pk and stored.token == shop.token
    assert (stored.telegram_id, stored.username, stored.display_name) == (
        shop.id, "shop_bot", "Shop")
    assert shop.token not in stored.encrypted_token
    assert len(emulator.calls_named("getMe")) == 1


async def test_a_malformed_token_never_reaches_telegram(emulator):
    with pytest.raises(TokenRejected, match="does not look like a Telegram bot token"):
        await aregister_bot("hello:world")
    assert not emulator.calls_named("getMe")


async def test_a_token_telegram_rejects_says_so_without_the_token(emulator):
    token = fake_token(66666666)
    with pytest.raises(TokenRejected, match="Telegram rejected this token") as refused:
        await aregister_bot(token)
    assert token.split(":")[1] not in str(refused.value)
    assert not await BotInstance.objects.aexists()


async def test_an_unreachable_api_says_so_without_the_token(emulator):
    shop = emulator.create_bot(username="shop_bot")
    await emulator.stop()
    with pytest.raises(TokenRejected, match="Could not reach") as refused:
        await aregister_bot(shop.token)
    assert shop.token.split(":")[1] not in str(refused.value)


async def test_the_same_bot_twice_is_refused_unless_registered_again(emulator):
    shop = emulator.create_bot(username="shop_bot")
    first = await aregister_bot(shop.token, actor=Actor.system())
    with pytest.raises(TokenRejected, match=ALREADY_REGISTERED):
        await aregister_bot(shop.token)
    await BotInstance.objects.filter(pk=first.pk).aupdate(username="renamed")

    again = await aregister_bot(shop.token, again=True, actor=Actor.system())

    assert again.pk == first.pk and await BotInstance.objects.acount() == 1
    assert (await BotInstance.objects.aget()).username == "shop_bot"
    # Only the first registration added a bot.
    assert await AuditLog.objects.filter(action="bot.registered").acount() == 1
