"""Attacks by people inside a group: rights are Telegram's, now, action by action.

Pat administers Cats with one right, pinning messages; bob has 'Ban users'.
"""

from __future__ import annotations

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from analytics.tests.factory import event, make_group
from bots.models import BotCommand
from dashboard import consumers
from dashboard.live import LiveFeed
from dashboard.routing import websocket_urlpatterns
from dashboard.tests.conftest import BOB_TG, CHARLIE_TG
from groups import rights
from groups.models import GroupAdmin
from tests.security.conftest import bearer, queued
from tests.security.routes import HTMX, SETTINGS, Target, refused

# What runbot's composition root subscribes to the engine's events.
live_feed = LiveFeed()

BAN_RIGHT = "You need the 'Ban users' right in Cats."


class TestPinOnlyAdmin:
    def test_a_pin_only_admin_cannot_ban_from_the_dashboard(self, people):
        client = people.client(people.pat)
        url = f"/groups/{people.cats.pk}/members/4242/ban/"
        before = BotCommand.objects.count()

        # Through htmx, the refusal lands in the page's #flash slot, naming the right.
        response = client.post(url, **HTMX)
        assert response.headers["HX-Retarget"] == "#flash"
        assert BAN_RIGHT.replace("'", "&#x27;") in response.content.decode()
        # Without htmx it is a 403 page saying the same.
        response = client.post(url)
        assert response.status_code == 403
        assert BAN_RIGHT.replace("'", "&#x27;") in response.content.decode()
        # Nothing was queued.
        assert BotCommand.objects.count() == before

    def test_a_pin_only_admin_cannot_ban_through_the_api(self, people):
        response = bearer(people.pat).post(
            "/api/v1/commands", {"group_id": people.cats.pk, "kind": "ban", "user_id": 4242},
            content_type="application/json")
        assert response.status_code == 403
        assert response.json()["detail"] == BAN_RIGHT
        assert not BotCommand.objects.filter(kind="ban").exists()

    @pytest.mark.parametrize("kind", ["unmute", "unban", "recheck"])
    def test_a_pin_only_admin_cannot_queue_any_member_command(self, people, kind):
        response = bearer(people.pat).post(
            "/api/v1/commands", {"group_id": people.cats.pk, "kind": kind, "user_id": 4242},
            content_type="application/json")
        assert response.status_code == 403 and response.json()["detail"] == BAN_RIGHT

    def test_a_pin_only_admin_cannot_weaken_the_settings_or_switch_protection_off(self, people):
        client, api = people.client(people.pat), bearer(people.pat)
        pk = people.cats.pk
        # Pages: fail open, delete only, himself on the allow-list; protection off.
        assert client.post(f"/groups/{pk}/settings/", SETTINGS).status_code == 403
        assert client.post(f"/groups/{pk}/toggle/").status_code == 403
        # API: the same, each a 403 naming the right.
        for response in (
            api.patch(f"/api/v1/groups/{pk}/settings", {"fail_mode": "open"},
                      content_type="application/json"),
            api.post(f"/api/v1/groups/{pk}/disable"),
        ):
            assert response.status_code == 403 and response.json()["detail"] == BAN_RIGHT
        people.cats.refresh_from_db()
        assert (people.cats.enabled, people.cats.fail_mode, people.cats.action) == (
            True, "closed", "mute")

    def test_a_pin_only_admin_still_sees_the_group_and_is_told_what_is_missing(self, people):
        html = people.client(people.pat).get(f"/groups/{people.cats.pk}/").content.decode()
        # He sees it (he is an admin), without Ban or Save buttons, and is told why.
        assert "Cats" in html and ">Ban<" not in html and "Save settings" not in html
        assert BAN_RIGHT.replace("'", "&#x27;") in html


class TestSettingUpGrantsNothing:
    def test_the_person_who_set_a_group_up_but_is_not_its_admin_gets_404(self, people):
        # Charlie ran /protect here once, but Telegram no longer lists him as an admin.
        den = make_group(bot=people.cats.bot, title="Den", setup_by_user_id=CHARLIE_TG,
                         channels=list(people.cats.channels.all()))
        target = Target.of(den, queued(den, people.charlie))
        assert refused(people.client(people.charlie), bearer(people.charlie), target) == {}

    def test_the_creator_may_do_everything_without_any_flag(self, people):
        GroupAdmin.objects.filter(group=people.cats, user_id=1001).update(
            can_restrict_members=False)
        response = bearer(people.alice).post(f"/api/v1/groups/{people.cats.pk}/disable")
        assert response.status_code == 200


class TestQueuedCommands:
    def test_an_unban_queued_before_a_demotion_is_refused_when_it_runs(self, people):
        people.client(people.bob).post(
            f"/groups/{people.cats.pk}/members/{BOB_TG}/unban/", **HTMX)
        command = BotCommand.objects.get(kind="unban")
        # Bob is demoted before runbot gets to it.
        GroupAdmin.objects.filter(group=people.cats, user_id=BOB_TG).delete()
        refusal = rights.command_refusal(command, people.cats.pk, "Cats")
        assert refusal is not None and refusal.message == "You are not an administrator of Cats."

    def test_a_ban_queued_before_losing_the_right_is_refused_naming_it(self, people):
        people.client(people.bob).post(f"/groups/{people.cats.pk}/members/4242/ban/", **HTMX)
        command = BotCommand.objects.get(kind="ban")
        GroupAdmin.objects.filter(group=people.cats, user_id=BOB_TG).update(
            can_restrict_members=False)
        assert str(rights.command_refusal(command, people.cats.pk, "Cats")) == BAN_RIGHT

    def test_a_command_staff_queued_runs(self, people):
        people.client(people.staff).post(f"/groups/{people.cats.pk}/members/4242/ban/", **HTMX)
        command = BotCommand.objects.get(kind="ban")
        assert rights.command_refusal(command, people.cats.pk, "Cats") is None

    def test_a_command_whose_requester_was_deactivated_is_refused(self, people):
        people.client(people.bob).post(f"/groups/{people.cats.pk}/members/4242/ban/", **HTMX)
        command = BotCommand.objects.get(kind="ban")
        people.bob.is_active = False
        people.bob.save()
        command.refresh_from_db()
        assert rights.command_refusal(command, people.cats.pk, "Cats") is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
class TestOpenWebsockets:
    async def test_an_open_group_feed_closes_once_its_admin_is_gone(self, people, monkeypatch):
        # No message this time (a refresh of the admin list dropped him): the timer finds it.
        monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.05)
        communicator = await connect(people.bob, f"/ws/feed/{people.cats.pk}/")
        await GroupAdmin.objects.filter(group=people.cats, user_id=BOB_TG).adelete()
        closed = await communicator.receive_output(timeout=10)
        assert closed == {"type": "websocket.close", "code": consumers.CLOSE_NOT_FOUND}

    async def test_the_overview_feed_leaves_a_group_its_admin_lost(self, people):
        from asgiref.sync import sync_to_async

        birds = await sync_to_async(make_group)(bot=people.cats.bot, title="Birds")
        await GroupAdmin.objects.acreate(group=birds, user_id=BOB_TG, can_restrict_members=True)
        communicator = await connect(people.bob, "/ws/feed/")
        # The engine removes Bob from Cats and tells his sockets.
        await GroupAdmin.objects.filter(group=people.cats, user_id=BOB_TG).adelete()
        await rights.tell_open_feeds(BOB_TG)
        live_feed.forward(event(people.cats, "restricted", user_name="Secret of Cats"))
        live_feed.forward(event(birds, "restricted", user_name="Birdwatcher"))
        frame = await communicator.receive_from(timeout=10)
        # Birds still reaches him; Cats no longer does.
        assert "Birdwatcher" in frame and "Secret of Cats" not in frame
        await communicator.disconnect()


async def connect(user, path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator
