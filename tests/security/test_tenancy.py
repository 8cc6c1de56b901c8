"""Attacks across tenants: another owner's ids, on every page, partial, API route
and websocket, answer 404 and change nothing."""

from __future__ import annotations

import re

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern

from bots.models import AuditLog, BotCommand
from dashboard import consumers
from dashboard.routing import websocket_urlpatterns
from dashboard.urls import urlpatterns
from groups.models import ProtectedGroup
from nezuko.api import api
from tests.security.conftest import bearer
from tests.security.routes import Target, api_requests, page_requests, refused

# Parameterised routes that name no group's resource: one-time login links, and
# one's own API tokens (tests/security/test_tenancy.py::…token… covers those).
NOT_GROUP_SCOPED = {"login-link", "token-revoke"}


def snapshot() -> tuple:
    """Everything an attack could change: settings, switches, queue, audit."""
    groups = list(ProtectedGroup.objects.order_by("pk").values_list(
        "pk", "enabled", "action", "fail_mode", "warning_delete_after", "allowed_user_ids"))
    return groups, BotCommand.objects.count(), AuditLog.objects.count()


class TestAnotherOwnersIds:
    def test_charlie_gets_404_for_every_route_into_alices_group(self, people):
        target = Target.of(people.cats, people.cats_command)
        before = snapshot()
        # Every page, partial and API route answers 404, and nothing changed.
        assert refused(people.client(people.charlie), bearer(people.charlie), target) == {}
        assert snapshot() == before

    def test_alice_gets_404_for_every_route_into_charlies_group(self, people):
        target = Target.of(people.dogs, people.dogs_command)
        before = snapshot()
        assert refused(people.client(people.alice), bearer(people.alice), target) == {}
        assert snapshot() == before

    def test_bob_an_admin_of_cats_gets_404_for_every_route_into_dogs(self, people):
        target = Target.of(people.dogs, people.dogs_command)
        assert refused(people.client(people.bob), bearer(people.bob), target) == {}

    def test_a_user_with_no_telegram_account_gets_404_everywhere(self, people,
                                                                  django_user_model):
        nobody = django_user_model.objects.create_user("nobody")
        target = Target.of(people.cats, people.cats_command)
        client = Client()
        client.force_login(nobody)
        assert refused(client, bearer(nobody), target) == {}

    def test_lists_and_overviews_show_nothing_of_another_owner(self, people):
        client = people.client(people.alice)
        for path in ("/", "/groups/", "/channels/", "/bots/", "/analytics/", "/audit/"):
            html = client.get(path).content.decode()
            # Charlie's group, its channel and bot appear nowhere on Alice's pages.
            assert "Dogs" not in html and "Dog News" not in html, path
            assert "dogs_bot" not in html, path
        api = bearer(people.alice)
        assert [g["title"] for g in api.get("/api/v1/groups").json()] == ["Cats"]
        assert "Dog News" not in api.get("/api/v1/channels").content.decode()
        assert "dogs_bot" not in api.get("/api/v1/bots").content.decode()

    def test_someone_elses_api_token_cannot_be_revoked(self, people):
        from dashboard.models import ApiToken

        token, _ = ApiToken.issue(people.charlie, "charlie's script")
        response = people.client(people.alice).post(f"/tokens/{token.pk}/revoke/")
        assert response.status_code == 404
        token.refresh_from_db()
        assert token.revoked_at is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
class TestWebsocket:
    async def test_charlie_cannot_subscribe_to_alices_group_feed(self, people):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns),
                                             f"/ws/feed/{people.cats.pk}/")
        communicator.scope["user"] = people.charlie
        connected, code = await communicator.connect()
        # It should close with the not-found code, as a page answers 404.
        assert not connected and code == consumers.CLOSE_NOT_FOUND


class TestTheAttackTableCoversEveryRoute:
    def test_every_parameterised_dashboard_route_is_attacked(self, people):
        target = Target.of(people.cats, people.cats_command)
        attacked = {r.template for r in page_requests(target)}
        declared = {p.name for p in urlpatterns
                    if isinstance(p, URLPattern) and "<" in str(p.pattern)}
        # A new route naming an id must be added to tests/security/routes.py.
        assert declared - NOT_GROUP_SCOPED <= attacked, declared - NOT_GROUP_SCOPED - attacked

    def test_every_api_route_with_an_id_is_attacked(self, people):
        target = Target.of(people.cats, people.cats_command)
        attacked = {(r.method, r.template) for r in api_requests(target)}
        declared = {
            (method, f"/api/v1{path}" if not path.startswith("/api/v1") else path)
            for path, operations in api.get_openapi_schema()["paths"].items()
            if re.search(r"\{\w+\}", path)
            for method in operations
        }
        assert declared <= attacked, declared - attacked
