"""What the composition root hands the runtime: each app's part reaches a running bot."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from telegram.ext import CommandHandler

from analytics import folding
from analytics.models import ApiCallRollup, DecisionRollup
from analytics.tests.factory import event, make_group
from bots.application import build_application
from bots.ratelimit import TelegramRateLimiter
from dashboard.routing import websocket_urlpatterns
from dashboard.tests.conftest import close_thread_connections  # noqa: F401 - a fixture
from nezuko.runtime import runtime_options

pytestmark = pytest.mark.django_db(transaction=True)


def installed_engine(options, group):
    """The engine of `group`'s bot as runbot installs it, with the apps' extensions."""
    application = build_application(group.bot.token, with_updater=False)
    engine = options.install(application, group.bot)
    for extend in options.extensions:
        extend(application)
    return application, engine


@pytest.mark.usefixtures("close_thread_connections")
async def test_an_event_the_engine_records_is_folded_and_reaches_the_live_feed():
    group = await sync_to_async(make_group)()
    staff = await User.objects.acreate(username="root", is_staff=True, is_superuser=True)
    seen = []
    options = runtime_options(subscribers=[seen.append])
    _, engine = await sync_to_async(installed_engine)(options, group)
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/feed/")
    communicator.scope["user"] = staff
    assert (await communicator.connect())[0]
    await sync_to_async(folding.flush)()

    engine.recorder.record(event(group, "restricted", user_name="Raider"))

    # It should reach the browser watching, the test's own listener, and the rollups.
    assert "Raider" in await communicator.receive_from(timeout=5)
    assert [e.user_name for e in seen] == ["Raider"]
    assert await sync_to_async(folding.flush)() >= 1
    assert await DecisionRollup.objects.filter(group=group).acount() == 1
    await communicator.disconnect()


@pytest.mark.usefixtures("close_thread_connections")
async def test_bot_api_calls_reach_the_rollups_through_the_limiters_observer():
    group = await sync_to_async(make_group)()
    await sync_to_async(folding.flush)()
    # A bot's limiter as BotRunner builds it from the composed options.
    limiter = TelegramRateLimiter(name=str(group.bot_id),
                                  call_observers=runtime_options().call_observers)

    async def telegram_answers() -> dict:
        return {"ok": True}

    await limiter.process_request(telegram_answers, (), {}, "getChatMember",
                                  {"chat_id": -1001}, None)

    # It should land in the process buffer and be written by the next flush.
    await sync_to_async(folding.flush)()
    row = await ApiCallRollup.objects.aget(method="getChatMember")
    assert (row.bot_id, row.count) == (group.bot_id, 1)


def test_every_bot_answers_login_in_a_private_chat():
    application, _ = installed_engine(runtime_options(), make_group())

    commands = {
        name
        for handlers in application.handlers.values()
        for handler in handlers
        if isinstance(handler, CommandHandler)
        for name in handler.commands
    }
    # The dashboard's /login comes with the composition, not from any app's ready().
    assert "login" in commands

