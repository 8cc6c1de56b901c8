"""Engine metrics that do not need a running bot: labels, timing, errors, lag, activity,
dependencies and the webhook route's answers. End to end: verification/tests/
test_metrics_through_runbot.py and tests/test_monitoring.py."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
import structlog
from django.conf import settings
from prometheus_client import REGISTRY
from telegram import Update
from telegram.ext import CommandHandler, MessageHandler, filters

from bots import metrics, webhook
from bots.application import build_application
from bots.tests.runtime_support import close_db_threads  # noqa: F401
from tests.factories import make_bot


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def command_update(bot, text: str, update_id: int = 1) -> Update:
    """A private message as Telegram sends it, built into PTB objects."""
    command = text.split()[0]
    entities = ([{"type": "bot_command", "offset": 0, "length": len(command)}]
                if text.startswith("/") else [])
    return Update.de_json({"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": text, "entities": entities,
        "from": {"id": 4242, "is_bot": False, "first_name": "Carol"},
        "chat": {"id": 4242, "type": "private", "first_name": "Carol"}}}, bot)


class TestBotLabel:
    def test_series_carry_the_bots_username_once_it_is_named(self):
        metrics.name_bot(9101, "@label_bot")
        metrics.set_bot_up(9101, True)
        metrics.set_queue_depth("9101", "P1", 3)  # the limiter names bots by pk as text
        assert sample("nezuko_bot_up", bot="label_bot") == 1
        assert sample("nezuko_limiter_queue_depth", bot="label_bot", priority="P1") == 3
        # It should never use the database id once the name is known.
        assert REGISTRY.get_sample_value("nezuko_bot_up", {"bot": "9101"}) is None

    def test_an_unnamed_bot_is_labelled_by_its_pk(self):
        assert metrics.bot_label(9102) == "9102"
        assert metrics.bot_label(None) == ""


class TestHandlerTiming:
    async def test_every_handler_and_command_is_counted_and_timed(self, scene):
        async def status(update, context):
            return None

        async def boom(update, context):
            raise RuntimeError("a bug")

        async def on_text(update, context):
            return None

        application = build_application(scene.bot.token, with_updater=False)
        application.add_handler(CommandHandler(["status", "stats"], status))
        application.add_handler(CommandHandler("boom", boom))
        application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text), group=1)
        metrics.name_bot(9103, "timing_bot")
        # It should wrap each handler once, however often it is asked to.
        assert metrics.time_handlers(application, 9103) == 3
        assert metrics.time_handlers(application, 9103) == 0
        before = {
            "stats": sample("nezuko_commands_total", bot="timing_bot", command="stats",
                            outcome="ok"),
            "boom": sample("nezuko_commands_total", bot="timing_bot", command="boom",
                           outcome="error"),
            "timed": sample("nezuko_handler_seconds_count", bot="timing_bot", handler="status"),
        }
        errors = []
        application.add_error_handler(lambda update, context: errors.append(context.error))

        async with application:  # getMe, answered by the emulator
            bot = application.bot
            await application.process_update(command_update(bot, "/stats@nezuko_bot now", 1))
            await application.process_update(command_update(bot, "/boom", 2))
            await application.process_update(command_update(bot, "hello", 3))

        # /stats ran the status handler: counted under the command that was used.
        assert sample("nezuko_commands_total", bot="timing_bot", command="stats",
                      outcome="ok") == before["stats"] + 1
        assert sample("nezuko_handler_seconds_count", bot="timing_bot",
                      handler="status") == before["timed"] + 1
        # A failing handler is an error, and PTB still sees its exception.
        assert sample("nezuko_commands_total", bot="timing_bot", command="boom",
                      outcome="error") == before["boom"] + 1
        assert sample("nezuko_handled_total", bot="timing_bot", handler="boom",
                      outcome="error") >= 1
        assert [type(e) for e in errors] == [RuntimeError]
        # A handler that is not a command is timed but is no command.
        assert sample("nezuko_handled_total", bot="timing_bot", handler="on_text",
                      outcome="ok") >= 1


class TestErrors:
    def test_error_lines_are_counted_by_kind_and_bot(self):
        metrics.name_bot(9104, "errors_bot")
        kind = {"bot": "errors_bot", "kind": "bot.crashed"}
        before = sample("nezuko_errors_total", **kind)
        structlog.get_logger("nezuko.tests").error("bot.crashed", bot=9104)
        structlog.get_logger("nezuko.tests").warning("bot.network_error", bot=9104)
        assert sample("nezuko_errors_total", **kind) == before + 1
        assert sample("nezuko_errors_total", bot="errors_bot", kind="bot.network_error") == 0

    def test_a_librarys_error_counts_under_its_logger(self):
        before = sample("nezuko_errors_total", bot="", kind="django.request")
        logging.getLogger("django.request").error("Internal Server Error: /x/%s", "y")
        assert sample("nezuko_errors_total", bot="", kind="django.request") == before + 1

    def test_a_kind_that_is_not_a_literal_is_other(self):
        before = sample("nezuko_errors_total", bot="", kind="other")
        metrics.record_error("failed for user 12345 at 2026-01-01T00:00")
        assert sample("nezuko_errors_total", bot="", kind="other") == before + 1


def message_update(update_id: int, user_id: int, chat_id: int, date: float,
                   chat_type: str = "supergroup") -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(date), "text": "hi",
        "from": {"id": user_id, "is_bot": False, "first_name": "P"},
        "chat": {"id": chat_id, "type": chat_type, "title": "G"}}}


class TestReceivedUpdates:
    def test_lag_is_now_minus_the_updates_date(self):
        metrics.name_bot(9105, "lag_bot")
        now = time.time()
        count = sample("nezuko_update_lag_seconds_count", bot="lag_bot")
        total = sample("nezuko_update_lag_seconds_sum", bot="lag_bot")
        metrics.observe_update(9105, message_update(1, 1, -100, now - 42), now=now)
        # A button press has no date of its own: no lag.
        metrics.observe_update(9105, {"update_id": 2, "callback_query": {
            "id": "q", "from": {"id": 1, "is_bot": False, "first_name": "P"}, "data": "x"}})
        assert sample("nezuko_update_lag_seconds_count", bot="lag_bot") == count + 1
        assert sample("nezuko_update_lag_seconds_sum", bot="lag_bot") == pytest.approx(
            total + 42, abs=1)

    def test_active_people_and_groups_by_window(self):
        metrics.name_bot(9106, "active_bot")
        now = time.time()
        minute = 60
        # Two people in one group now, one an hour ago in another group, one 25 h ago.
        metrics.observe_update(9106, message_update(1, 501, -1001, now - 25 * 3600),
                               now=now - 25 * 3600)
        metrics.observe_update(9106, message_update(2, 502, -1002, now - 60 * minute),
                               now=now - 60 * minute)
        metrics.observe_update(9106, message_update(3, 503, -1001, now), now=now)
        metrics.observe_update(9106, message_update(4, 504, -1001, now), now=now)
        # A private chat is a person, not a group; another bot is nobody.
        metrics.observe_update(9106, message_update(5, 505, 505, now, chat_type="private"),
                               now=now)
        bot_sender = message_update(6, 506, -1001, now)
        bot_sender["message"]["from"]["is_bot"] = True
        metrics.observe_update(9106, bot_sender, now=now)

        assert sample("nezuko_active_users", bot="active_bot", window="5m") == 3
        assert sample("nezuko_active_groups", bot="active_bot", window="5m") == 1
        # The 25-hour-old ids were pruned when the minute changed.
        assert sample("nezuko_active_users", bot="active_bot", window="24h") == 4
        assert sample("nezuko_active_groups", bot="active_bot", window="24h") == 2


class TestDependencies:
    @pytest.mark.django_db(transaction=True)
    @pytest.mark.usefixtures("close_db_threads")
    async def test_the_probe_exports_the_database_and_bot_heartbeats(self):
        from asgiref.sync import sync_to_async

        from nezuko.health import probe_dependencies

        await sync_to_async(make_bot)(username="probed_bot")
        results = await probe_dependencies()
        assert results["database"] is True
        assert sample("nezuko_database_up", database="default") == 1
        if settings.REDIS_URL:
            # The PostgreSQL + Redis pass: Redis answers through both clients.
            assert results["cache"] is results["channel_layer"] is True
            assert sample("nezuko_redis_up", client="cache") == 1
            assert sample("nezuko_redis_up", client="channel_layer") == 1
        # An active bot that no process runs is not fresh.
        assert REGISTRY.get_sample_value("nezuko_bot_heartbeat_fresh",
                                         {"bot": "probed_bot"}) == 0

    def test_redis_is_absent_without_redis_url(self, settings, client, db):
        settings.REDIS_URL = ""
        metrics.REDIS_UP.clear()
        client.get("/readyz")
        assert sample("nezuko_database_up", database="default") == 1
        assert REGISTRY.get_sample_value("nezuko_redis_up", {"client": "cache"}) is None


class TestWebhookAnswers:
    async def test_each_answer_is_counted_by_status(self, settings):
        settings.WEBHOOK_SECRET = "s" * 32
        before = sample("nezuko_webhook_requests_total", status="403")

        async def django_stand_in(scope, receive, send):
            raise AssertionError("not for Django")

        router = webhook.asgi_router(django_stand_in, webhook.WebhookReceivers())
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post(f"{webhook.WEBHOOK_PREFIX}7000000001", json={})
        assert response.status_code == 403
        assert sample("nezuko_webhook_requests_total", status="403") == before + 1
