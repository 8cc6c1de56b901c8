"""Every domain change has one service, and every entry point calls it.

The dashboard's pages, the REST API and Django admin each make every change
here; each test checks the one audit row it leaves: the vocabulary's action
name, where it came from and who did it. Telegram commands, the fourth entry
point, are in verification/tests/test_commands.py (through the emulator).
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from bots.models import AuditLog, BotCommand, BotInstance
from dashboard.models import ApiToken
from dashboard.tests.conftest import (  # noqa: F401 - a fixture
    Personas,
    build_world,
    close_thread_connections,
)
from groups.models import GroupMember

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def world(db) -> Personas:
    return build_world()


def superuser_client() -> Client:
    superuser = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def admin_client(world) -> Client:
    return superuser_client()


def api(user) -> Client:
    _, plaintext = ApiToken.issue(user, "script")
    return Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")


def only_entry() -> AuditLog:
    """The single audit row a change left (a second one would be a second write path)."""
    entries = list(AuditLog.objects.exclude(action="api_token.created"))
    assert len(entries) == 1, [e.action for e in entries]
    return entries[0]


def page(name, *args):
    return reverse(f"dashboard:{name}", args=args)


# --- groups: settings --------------------------------------------------------------


SETTINGS_FORM = {"action": "kick", "policy": "all", "captcha_timeout": "120", "throttle": "60",
                 "language": "auto", "warning_delete_after": "60",
                 "fail_mode": "closed",
                 "warning_text": "", "allowed_user_ids": ""}


def test_settings_from_the_dashboard(world):
    world.client(world.bob).post(page("group-settings", world.cats.pk), SETTINGS_FORM)
    entry = only_entry()
    assert (entry.action, entry.source) == ("group.settings_changed", "dashboard")
    assert entry.actor == world.bob and entry.actor_telegram_id == 1002
    assert entry.after == {"action": "kick", "warning_delete_after": 60}


def test_settings_from_the_api(world):
    response = api(world.bob).patch(f"{API}/groups/{world.cats.pk}/settings",
                                    json.dumps({"action": "kick"}),
                                    content_type="application/json")
    assert response.status_code == 200, response.content
    entry = only_entry()
    assert (entry.action, entry.source) == ("group.settings_changed", "api")
    assert entry.before == {"action": "mute"} and entry.after == {"action": "kick"}


def test_an_empty_change_from_the_api_writes_no_audit_row(world):
    for body in ({}, {"action": "mute"}):  # nothing, and the value it already has
        response = api(world.bob).patch(f"{API}/groups/{world.cats.pk}/settings",
                                        json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.content
    assert not AuditLog.objects.exclude(action="api_token.created").exists()


def test_settings_from_django_admin(world, admin_client):
    url = reverse("admin:groups_protectedgroup_change", args=[world.cats.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "channels"}
    data.update({"bot": world.cats.bot_id, "action": "kick", "allowed_user_ids": "[]",
                 "links-TOTAL_FORMS": "0", "links-INITIAL_FORMS": "0"})
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = only_entry()
    assert (entry.action, entry.source, entry.actor_name) == (
        "group.settings_changed", "admin", "boss")
    assert entry.after == {"action": "kick"}


# --- groups: enable / disable --------------------------------------------------------


def test_disable_and_enable_from_the_dashboard(world):
    client = world.client(world.alice)
    client.post(page("group-toggle", world.cats.pk))
    assert only_entry().action == "group.disabled"
    client.post(page("group-toggle", world.cats.pk))
    assert AuditLog.objects.filter(action="group.enabled", source="dashboard").count() == 1


def test_disable_from_the_api(world):
    assert api(world.alice).post(f"{API}/groups/{world.cats.pk}/disable").status_code == 200
    entry = only_entry()
    assert (entry.action, entry.source) == ("group.disabled", "api")
    # Disabling what is already disabled is no change.
    assert api(world.alice).post(f"{API}/groups/{world.cats.pk}/disable").status_code == 200
    assert only_entry() == entry


def test_disable_from_django_admin(world, admin_client):
    admin_client.post(reverse("admin:groups_protectedgroup_changelist"),
                      {"action": "disable_protection", "_selected_action": [world.cats.pk]})
    entry = only_entry()
    assert (entry.action, entry.source, entry.group_id) == (
        "group.disabled", "admin", world.cats.pk)


# --- members: unmute / ban (carried out by runbot's command queue) ---------------------


@pytest.mark.parametrize("kind,action", [("unmute", "member.unmuted"),
                                         ("ban", "member.banned")])
def test_member_change_from_the_dashboard(world, kind, action):
    world.client(world.bob).post(page("member-command", world.cats.pk, 4242, kind))
    entry = only_entry()
    assert (entry.action, entry.source, entry.after["user_id"]) == (action, "dashboard", 4242)
    command = BotCommand.objects.get()
    assert (command.kind, command.payload["actor_telegram_id"]) == (kind, 1002)


@pytest.mark.parametrize("kind,action", [("unmute", "member.unmuted"),
                                         ("ban", "member.banned")])
def test_member_change_from_the_api(world, kind, action):
    response = api(world.bob).post(
        f"{API}/commands", json.dumps({"group_id": world.cats.pk, "kind": kind,
                                       "user_id": 4242}), content_type="application/json")
    assert response.status_code == 201, response.content
    entry = only_entry()
    assert (entry.action, entry.source) == (action, "api")
    assert BotCommand.objects.get().kind == kind


@pytest.mark.parametrize("kind,action", [("unmute", "member.unmuted"),
                                         ("ban", "member.banned")])
def test_member_change_from_django_admin(world, admin_client, kind, action):
    member = GroupMember.objects.get(user_id=4242)
    admin_client.post(reverse("admin:groups_groupmember_changelist"),
                      {"action": kind, "_selected_action": [member.pk]})
    entry = only_entry()
    assert (entry.action, entry.source, entry.group_id) == (action, "admin", world.cats.pk)
    command = BotCommand.objects.get()
    assert command.kind == kind and command.payload["user_id"] == 4242


def test_a_member_change_the_actor_has_no_right_for_is_refused_everywhere(world):
    """Pat-like rights are checked by the service, not by each entry point."""
    from groups.models import GroupAdmin

    GroupAdmin.objects.filter(user_id=1002).update(can_restrict_members=False)
    response = world.client(world.bob).post(page("member-command", world.cats.pk, 4242, "ban"))
    assert response.status_code == 403
    response = api(world.bob).post(
        f"{API}/commands", json.dumps({"group_id": world.cats.pk, "kind": "ban",
                                       "user_id": 4242}), content_type="application/json")
    assert response.status_code == 403
    assert "Ban users" in response.json()["detail"]
    assert not BotCommand.objects.exists()
    assert not AuditLog.objects.exclude(action="api_token.created").exists()


# --- bots: register, retoken, enable / disable ---------------------------------------


# The bot registration tests are async: getMe goes to the emulator, served by the
# test's own loop while the view runs in a worker thread.


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_register_from_the_dashboard(world, emulator):
    shop = emulator.create_bot(username="shop_bot", first_name="Shop")
    client = await sync_to_async(world.client)(world.alice)
    await sync_to_async(client.post)(page("bot-add"), {"token": shop.token})
    entry = await sync_to_async(only_entry)()
    assert (entry.action, entry.source) == ("bot.registered", "dashboard")
    assert entry.after == {"telegram_id": shop.id, "username": "shop_bot"}
    assert shop.token not in json.dumps([entry.before, entry.after, entry.object_repr])


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_register_from_the_api(world, emulator):
    shop = emulator.create_bot(username="shop_bot")
    client = await sync_to_async(api)(world.alice)
    response = await sync_to_async(client.post)(
        f"{API}/bots", json.dumps({"token": shop.token}), content_type="application/json")
    assert response.status_code == 201, response.content
    entry = await sync_to_async(only_entry)()
    assert (entry.action, entry.source) == ("bot.registered", "api")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_register_and_retoken_from_django_admin(world, emulator):
    client = await sync_to_async(superuser_client)()
    shop = emulator.create_bot(username="shop_bot", first_name="Shop")
    form = {"username": "", "display_name": "", "is_active": "on",
            "status-TOTAL_FORMS": "0", "status-INITIAL_FORMS": "0"}
    response = await sync_to_async(client.post)(reverse("admin:bots_botinstance_add"),
                                                form | {"token": shop.token})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert (await sync_to_async(only_entry)()).action == "bot.registered"
    bot = await BotInstance.objects.aget(telegram_id=shop.id)

    new_token = emulator.reissue_token(shop)
    response = await sync_to_async(client.post)(
        reverse("admin:bots_botinstance_change", args=[bot.pk]),
        form | {"token": new_token, "username": "shop_bot", "display_name": "Shop"})

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = await AuditLog.objects.aget(action="bot.retokened")
    assert (entry.source, entry.actor_name, entry.object_id) == ("admin", "boss", str(bot.pk))
    await bot.arefresh_from_db()
    assert bot.token == new_token


def test_disable_a_bot_from_the_dashboard_the_api_and_admin(world, admin_client):
    bot = world.cats.bot
    bot.owner = world.alice
    bot.save()
    world.client(world.alice).post(page("bot-toggle", bot.pk))
    assert only_entry().action == "bot.disabled" and only_entry().source == "dashboard"
    assert api(world.alice).post(f"{API}/bots/{bot.pk}/enable").status_code == 200
    assert AuditLog.objects.get(action="bot.enabled").source == "api"
    admin_client.post(reverse("admin:bots_botinstance_changelist"),
                      {"action": "deactivate", "_selected_action": [bot.pk]})
    assert AuditLog.objects.get(action="bot.disabled", source="admin").actor_name == "boss"
    bot.refresh_from_db()
    assert not bot.is_active


# --- reading the trail -----------------------------------------------------------------


def test_the_audit_page_and_admin_show_labels_and_people_not_account_names(world, admin_client):
    world.client(world.bob).post(page("member-command", world.cats.pk, 4242, "ban"))
    # A row from before the vocabulary, by a Telegram login (account "tg1001").
    AuditLog.objects.create(source="dashboard", actor=world.alice, actor_name="tg1001",
                            action="group.settings", object_type="protectedgroup",
                            group_id=world.cats.pk)
    html = world.client(world.alice).get(page("audit")).content.decode()
    assert "Member banned" in html and "Bob (Telegram)" in html
    assert "Settings changed" in html and "Alice (Telegram)" in html
    assert "tg1001" not in html and "tg1002" not in html
    admin_html = admin_client.get(reverse("admin:bots_auditlog_changelist")).content.decode()
    assert "Member banned" in admin_html and "Bob (Telegram)" in admin_html
