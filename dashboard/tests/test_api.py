"""The REST API: same gate as the pages, session or token auth, JSON errors."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from ninja.testing import TestClient

from bots.models import AuditLog, BotCommand, BotInstance
from bots.registration import ALREADY_REGISTERED
from dashboard.api import groups as groups_api
from dashboard.models import ApiToken
from verification.models import VerificationEvent

API = "/api/v1"


def bearer(user) -> Client:
    _, plaintext = ApiToken.issue(user, "script")
    return Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")


def patch(client: Client, path: str, data: dict):
    return client.patch(path, json.dumps(data), content_type="application/json")


class TestAuth:
    def test_anonymous_gets_401_json(self, world):
        response = Client().get(f"{API}/groups")
        assert response.status_code == 401
        assert "Bearer" in response.json()["detail"]

    def test_a_token_works_and_a_revoked_one_does_not(self, world):
        token, plaintext = ApiToken.issue(world.alice, "cron")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        assert [g["title"] for g in client.get(f"{API}/groups").json()] == ["Cats"]
        # Only the digest is stored.
        assert plaintext not in str(ApiToken.objects.values_list().get())
        token.revoked_at = token.created_at
        token.save()
        assert client.get(f"{API}/groups").status_code == 401

    def test_the_browser_session_works(self, world):
        assert world.client(world.bob).get(f"{API}/groups").status_code == 200

    def test_the_openapi_page_is_served(self, world):
        assert Client().get(f"{API}/openapi.json").status_code == 200


class TestTenancy:
    @pytest.mark.parametrize("method,path", [
        ("get", "/groups/{dogs}"), ("patch", "/groups/{dogs}/settings"),
        ("post", "/groups/{dogs}/enable"), ("post", "/groups/{dogs}/disable"),
        ("get", "/events?group={dogs}"), ("get", "/analytics?group={dogs}"),
        ("get", "/bots/{dogs_bot}"), ("post", "/bots/{dogs_bot}/disable"),
        ("get", "/channels/{dogs_channel}"),
    ])
    def test_it_returns_404_for_another_owner(self, world, method, path):
        path = path.format(dogs=world.dogs.pk, dogs_bot=world.dogs.bot_id,
                           dogs_channel=world.dogs.channels.get().pk)
        client = bearer(world.alice)
        if method == "patch":
            response = patch(client, API + path, {"fail_mode": "open"})
        else:
            response = getattr(client, method)(API + path)
        assert response.status_code == 404
        world.dogs.refresh_from_db()
        assert world.dogs.fail_mode == "closed" and world.dogs.enabled

    def test_a_command_for_another_owners_group_is_404(self, world):
        response = bearer(world.alice).post(
            f"{API}/commands", {"group_id": world.dogs.pk, "kind": "ban", "user_id": 4343},
            content_type="application/json")
        assert response.status_code == 404
        assert not BotCommand.objects.exists()

    def test_events_are_scoped(self, world):
        VerificationEvent.objects.create(group=world.cats, chat_id=1, user_id=1, outcome="verified")
        VerificationEvent.objects.create(group=world.dogs, chat_id=2, user_id=2, outcome="verified")
        body = bearer(world.alice).get(f"{API}/events").json()
        assert [e["group_id"] for e in body["items"]] == [world.cats.pk]

    def test_the_read_only_role_gets_403(self, world):
        response = patch(bearer(world.dave), f"{API}/groups/{world.cats.pk}/settings",
                         {"fail_mode": "open"})
        assert response.status_code == 403
        assert response.json()["detail"] == "Your role is read-only."


class TestGroups:
    def test_settings_update_is_validated_saved_and_audited(self, world):
        response = patch(bearer(world.bob), f"{API}/groups/{world.cats.pk}/settings",
                         {"fail_mode": "open", "allowed_user_ids": [7, 8]})
        assert response.status_code == 200
        assert response.json()["fail_mode"] == "open"
        assert response.json()["allowed_user_ids"] == [7, 8]
        assert AuditLog.objects.get().source == "api"

    @pytest.mark.parametrize("data,field", [
        ({"warning_text": "Hello {who}"}, "warning_text"),
        ({"warning_delete_after": -1}, "warning_delete_after"),
        ({"fail_mode": "sometimes"}, "fail_mode"),
        ({"allowed_user_ids": ["x"]}, "allowed_user_ids.0"),
    ])
    def test_validation_errors_name_the_field(self, world, data, field):
        response = patch(bearer(world.alice), f"{API}/groups/{world.cats.pk}/settings", data)
        assert response.status_code == 422
        body = response.json()
        assert field in [e["field"] for e in body["errors"]]
        assert field.split(".")[0] in body["detail"]

    def test_disable_then_enable(self, world):
        client = bearer(world.alice)
        assert client.post(f"{API}/groups/{world.cats.pk}/disable").json()["enabled"] is False
        assert client.post(f"{API}/groups/{world.cats.pk}/enable").json()["enabled"] is True
        assert AuditLog.objects.filter(action__startswith="group.").count() == 2

    def test_list_shape_with_the_ninja_test_client(self, world):
        client = TestClient(groups_api.router)
        response = client.get("/groups", user=world.alice, auth=world.alice)
        (group,) = response.json()
        assert set(group) >= {"id", "title", "enabled", "fail_mode", "allowed_user_ids"}


class TestEventsAndCommands:
    def test_events_are_keyset_paged_and_filtered(self, world):
        for i in range(5):
            VerificationEvent.objects.create(group=world.cats, chat_id=1, user_id=i,
                                             outcome="restricted" if i % 2 else "verified")
        client = bearer(world.alice)
        first = client.get(f"{API}/events", {"limit": 2}).json()
        second = client.get(f"{API}/events", {"limit": 2,
                                              "before_id": first["next_before_id"]}).json()
        assert [e["user_id"] for e in first["items"] + second["items"]] == [4, 3, 2, 1]
        restricted = client.get(f"{API}/events", {"outcome": "restricted"}).json()
        assert {e["user_id"] for e in restricted["items"]} == {1, 3}
        bad = client.get(f"{API}/events", {"outcome": "exploded", "limit": 0})
        assert bad.status_code == 422
        assert {"outcome", "limit"} <= {e["field"] for e in bad.json()["errors"]}

    def test_a_command_is_queued_and_read_back(self, world):
        client = bearer(world.bob)
        response = client.post(f"{API}/commands", {"group_id": world.cats.pk, "kind": "unmute",
                                                   "user_id": 4242},
                               content_type="application/json")
        assert response.status_code == 201
        command_id = response.json()["id"]
        assert client.get(f"{API}/commands/{command_id}").json()["status"] == "pending"
        assert bearer(world.charlie).get(f"{API}/commands/{command_id}").status_code == 404

    def test_analytics_answers_with_series(self, world):
        body = bearer(world.alice).get(f"{API}/analytics", {"period": "24h"}).json()
        assert body["span"] == "hour" and len(body["hourly_activity"]) == 24


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_adding_a_bot_checks_the_token_with_telegram_and_never_returns_it(
    emulator, world
):
    bot_user = emulator.create_bot(username="fresh_bot")
    client = await sync_to_async(bearer)(world.alice)

    response = await sync_to_async(client.post)(
        f"{API}/bots", {"token": bot_user.token}, content_type="application/json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["username"] == "fresh_bot"
    # The token is nowhere in the answer, and stored encrypted.
    assert bot_user.token not in response.content.decode()
    stored = await BotInstance.objects.aget(pk=body["id"])
    assert bot_user.token not in stored.encrypted_token and stored.owner_id == world.alice.pk
    # getMe went to the emulator.
    assert emulator.calls_named("getMe")

    # A token Telegram does not know is refused with a clear message.
    response = await sync_to_async(client.post)(
        f"{API}/bots", {"token": "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        content_type="application/json")
    assert response.status_code == 400
    assert "rejected" in response.json()["detail"]

    # The same bot again: refused by bots.registration once Telegram confirmed the
    # token, so a bot id alone never tells whether Nezuko serves that bot.
    asked = len(emulator.calls_named("getMe"))
    response = await sync_to_async(client.post)(
        f"{API}/bots", {"token": bot_user.token}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == ALREADY_REGISTERED
    assert len(emulator.calls_named("getMe")) == asked + 1
    assert await BotInstance.objects.filter(username="fresh_bot").acount() == 1


def test_only_a_bots_owner_may_disable_it_through_the_api(world):
    response = bearer(world.bob).post(f"{API}/bots/{world.cats.bot_id}/disable")
    assert response.status_code == 403
    assert "owner" in response.json()["detail"]
    world.cats.bot.refresh_from_db()
    assert world.cats.bot.is_active


def test_a_session_needs_the_csrf_token_for_changes(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)
    response = client.post(f"{API}/groups/{world.cats.pk}/disable")
    assert response.status_code == 403
    world.cats.refresh_from_db()
    assert world.cats.enabled
    # Reading needs no token.
    assert client.get(f"{API}/groups").status_code == 200


class TestBadInput:
    @pytest.mark.parametrize("path", ["/groups", "/channels"])
    def test_an_offset_beyond_any_database_integer_is_a_422(self, world, path):
        response = bearer(world.alice).get(f"{API}{path}", {"offset": "9" * 20})
        # It should name the field instead of failing in the database (500).
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["offset"]

    @pytest.mark.parametrize("user_id", [0, 2**52, 10**20])
    def test_a_command_for_an_impossible_user_id_is_a_422(self, world, user_id):
        response = bearer(world.alice).post(
            f"{API}/commands", {"group_id": world.cats.pk, "kind": "ban", "user_id": user_id},
            content_type="application/json")
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["user_id"]
        assert not BotCommand.objects.exists()
