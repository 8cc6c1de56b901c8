"""Django admin: every page renders for staff, tokens never show, changes are audited."""

import io
import logging

import pytest
import structlog
from asgiref.sync import sync_to_async
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group as AuthGroup
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from analytics.models import ApiCallHourly, ApiCallRollup, DecisionRollup, Rollup
from bots.models import AuditLog, BotCommand, BotInstance, BotStatus, BotUser, TelegramUser
from dashboard.models import ApiToken, LoginSession, TelegramAccount
from groups.models import GroupAdmin, GroupMember
from tests.factories import fake_token, make_bot, make_channel, make_group
from verification.models import Broadcast, Delivery, PendingJoinRequest, VerificationEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def token():
    return fake_token(55555555)


@pytest.fixture
def populated(token, staff):
    """One row of every model, so change forms have something to show."""
    bot = make_bot(token=token, username="shop_bot")
    BotStatus.objects.create(bot=bot, state="running", last_error="boom")
    BotCommand.objects.create(bot=bot, kind="unmute", payload={"user_id": 1})
    channel = make_channel(bot)
    group = make_group(bot, channels=[channel])
    GroupMember.objects.create(group=group, user_id=42, username="carol")
    GroupAdmin.objects.create(group=group, user_id=7, username="alice", is_creator=True)
    VerificationEvent.objects.create(bot=bot, group=group, chat_id=group.chat_id, user_id=42,
                                     outcome="restricted")
    AuditLog.objects.create(source="system", action="seed", object_type="bot")
    person = TelegramUser.objects.create(telegram_id=42, first_name="Carol", username="carol")
    BotUser.objects.create(bot=bot, user=person, blocked_at=timezone.now())
    AuthGroup.objects.create(name="read-only")
    broadcast = Broadcast.objects.create(bot=bot, audience="owners", text="Hello", sent_by=7,
                                         state="finished")
    Delivery.objects.create(broadcast=broadcast, user_id=7, status="sent")
    now = timezone.now().replace(second=0, microsecond=0)
    TelegramAccount.objects.create(user=staff, telegram_id=7, username="alice")
    ApiToken.issue(staff, "scripts")
    LoginSession.objects.create(user=staff, session_key="k" * 32, method="staff")
    Rollup.objects.create(span="h", bucket=now, group_id=group.pk, outcome="restricted", count=1)
    ApiCallHourly.objects.create(hour=now, bot_id=bot.pk, method="getMe", outcome="ok", count=1)
    PendingJoinRequest.objects.create(bot=bot, group=group, user_id=43, user_chat_id=43,
                                      expires_at=timezone.now())
    DecisionRollup.objects.create(minute=now, group=group, bot=bot, outcome="restricted", count=1)
    ApiCallRollup.objects.create(minute=now, bot=bot, method="getChatMember", outcome="ok",
                                 count=3)
    # Login lockouts (django-axes) and staff authenticators (django-otp) have admin pages too.
    AccessAttempt.objects.create(username="staff", ip_address="192.0.2.1", user_agent="x",
                                 http_accept="*/*", path_info="/login/", get_data="",
                                 post_data="", failures_since_start=1)
    AccessLog.objects.create(username="staff", ip_address="192.0.2.1", user_agent="x",
                             http_accept="*/*", path_info="/login/")
    AccessFailureLog.objects.create(username="staff", ip_address="192.0.2.1", user_agent="x",
                                    http_accept="*/*", path_info="/login/")
    # Unconfirmed: a confirmed one would (rightly) send this session to the code page first.
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=False)
    return bot


def admin_urls():
    for model in admin.site._registry:
        meta = model._meta
        yield f"admin:{meta.app_label}_{meta.model_name}_changelist", model


def test_every_changelist_and_change_form_renders_without_the_token(staff_client, populated, token):
    secret = token.split(":")[1]
    for changelist, model in admin_urls():
        response = staff_client.get(reverse(changelist))
        assert response.status_code == 200, changelist
        assert secret not in response.content.decode()

        obj = model.objects.first()
        assert obj is not None, f"no {model.__name__} row to open"
        change = changelist.replace("_changelist", "_change")
        response = staff_client.get(reverse(change, args=[obj.pk]))
        assert response.status_code == 200, change
        assert secret not in response.content.decode(), change


def test_every_add_form_renders_where_adding_is_allowed(staff_client, populated):
    for changelist, _model in admin_urls():
        add = changelist.replace("_changelist", "_add")
        response = staff_client.get(reverse(add))
        assert response.status_code in (200, 403), add


@pytest.mark.django_db(transaction=True)
async def test_staff_add_a_bot_by_token_and_it_is_stored_encrypted_and_audited(
    staff_client, emulator
):
    shop = emulator.create_bot(username="shop_bot", first_name="Shop")
    token = shop.token
    response = await sync_to_async(staff_client.post)(
        reverse("admin:bots_botinstance_add"),
        {"token": token, "username": "typed_name", "display_name": "", "is_active": "on",
         "status-TOTAL_FORMS": "0", "status-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    bot = await BotInstance.objects.aget()
    assert bot.token == token
    assert bot.telegram_id == shop.id
    # It went through bots.registration: getMe checked it and named the bot.
    assert emulator.calls_named("getMe")
    assert (bot.username, bot.display_name) == ("shop_bot", "Shop")
    # It should write an audit row without the token in it.
    entry = await AuditLog.objects.select_related("actor").aget(action="bot.registered")
    assert entry.source == "admin" and entry.actor.username == "staff"
    assert token not in str(entry.after) and "encrypted_token" not in entry.after

    # The change page shows an empty token field: write-only.
    page = await sync_to_async(staff_client.get)(
        reverse("admin:bots_botinstance_change", args=[bot.pk]))
    assert token.split(":")[1] not in page.content.decode()
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_a_token_telegram_rejects_is_a_form_error_without_the_token(
    staff_client, emulator
):
    token = fake_token(66666666)  # well formed, unknown to Telegram
    response = await sync_to_async(staff_client.post)(
        reverse("admin:bots_botinstance_add"),
        {"token": token, "username": "x", "is_active": "on",
         "status-TOTAL_FORMS": "0", "status-INITIAL_FORMS": "0"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Telegram rejected this token" in html
    assert token.split(":")[1] not in html
    assert not await BotInstance.objects.aexists()
    await sync_to_async(connections.close_all)()


def test_it_refuses_a_malformed_token_with_a_clear_error(staff_client):
    response = staff_client.post(
        reverse("admin:bots_botinstance_add"),
        {"token": "hello", "username": "x",
         "status-TOTAL_FORMS": "0", "status-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 200
    assert "does not look like a Telegram bot token" in response.content.decode()
    assert not BotInstance.objects.exists()


def test_bulk_disable_protection_is_audited_per_group(staff_client):
    groups = [make_group(), make_group()]
    response = staff_client.post(
        reverse("admin:groups_protectedgroup_changelist"),
        {"action": "disable_protection", "_selected_action": [g.pk for g in groups]},
    )
    assert response.status_code == 302
    for group in groups:
        group.refresh_from_db()
        assert group.enabled is False
        entry = AuditLog.objects.get(action="group.disabled", group_id=group.pk)
        assert entry.before == {"enabled": True} and entry.after == {"enabled": False}


def test_editing_a_group_records_before_and_after(staff_client):
    group = make_group(title="Cats")
    url = reverse("admin:groups_protectedgroup_change", args=[group.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "channels"}
    data.update({"bot": group.bot_id, "fail_mode": "open", "allowed_user_ids": "[]",
                 "links-TOTAL_FORMS": "0", "links-INITIAL_FORMS": "0"})
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}

    response = staff_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditLog.objects.get(action="group.settings_changed", group_id=group.pk)
    assert entry.before == {"fail_mode": "closed"}
    assert entry.after == {"fail_mode": "open"}


def test_audit_log_is_read_only(staff_client):
    entry = AuditLog.objects.create(source="system", action="seed", object_type="bot")
    response = staff_client.post(reverse("admin:bots_auditlog_delete", args=[entry.pk]),
                                 {"post": "yes"})
    assert response.status_code == 403
    assert AuditLog.objects.filter(pk=entry.pk).exists()


@pytest.fixture
def log_output():
    """What the configured console handler writes, redirected into a buffer."""
    configured = logging.getLogger().handlers[0]
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(configured.formatter)
    for log_filter in configured.filters:
        handler.addFilter(log_filter)
    logging.getLogger().addHandler(handler)
    yield buffer
    logging.getLogger().removeHandler(handler)


def test_tokens_are_scrubbed_from_log_output(log_output, token):
    # httpx logs request URLs, which carry the token; even a warning must not show it.
    logging.getLogger("httpx").warning("POST https://api.telegram.org/bot%s/getMe", token)
    logging.getLogger("nezuko.test").error("token in message %s", token)
    structlog.get_logger("nezuko.test").error("bot.failed", url=f"/bot{token}/getUpdates")

    output = log_output.getvalue()
    assert "getMe" in output and "bot.failed" in output and "token in message" in output
    assert token.split(":")[1] not in output
    assert output.count("<token>") >= 3


def test_staff_revoke_api_tokens_and_the_revocation_is_audited(staff_client, staff):
    token, plaintext = ApiToken.issue(staff, "scripts")
    response = staff_client.post(
        reverse("admin:dashboard_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditLog.objects.filter(action="api_token.revoked", object_id=str(token.pk)).exists()
    # Neither the token nor its digest is ever shown.
    page = staff_client.get(reverse("admin:dashboard_apitoken_change", args=[token.pk]))
    assert plaintext not in page.content.decode()
    assert token.token_hash not in page.content.decode()


def test_staff_queue_a_failed_command_again_as_a_new_command(staff_client, staff):
    bot = make_bot()
    failed = BotCommand.objects.create(bot=bot, kind="unmute", payload={"user_id": 5},
                                       status="failed", error="boom")
    response = staff_client.post(
        reverse("admin:bots_botcommand_changelist"),
        {"action": "queue_again", "_selected_action": [failed.pk]},
    )
    assert response.status_code == 302
    retry = BotCommand.objects.exclude(pk=failed.pk).get()
    assert (retry.kind, retry.payload, retry.status) == ("unmute", {"user_id": 5}, "pending")
    assert retry.requested_by == staff
    # The first attempt keeps its record.
    failed.refresh_from_db()
    assert failed.status == "failed" and failed.error == "boom"
    assert AuditLog.objects.filter(action="command.queued_again", object_id=str(retry.pk)).exists()
