"""Attacks played through Telegram (the Bot API emulator and the real engine):
rights end when Telegram's end."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from analytics.tests.factory import event, make_group
from bots.command_queue import CommandQueue
from bots.models import BotCommand
from dashboard import consumers
from dashboard.live import LiveFeed
from dashboard.routing import websocket_urlpatterns
from dashboard.tests.conftest import telegram_user
from groups.models import GroupAdmin, ProtectedGroup
from tests.security.conftest import bearer
from tests.security.routes import HTMX, Target, refused
from verification.executors import EXECUTORS

# What runbot's composition root subscribes to the engine's events.
live_feed = LiveFeed()

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]

BAN_RIGHT = "You need the 'Ban users' right in Cats."


async def say(world, chat, user, text: str) -> str:
    since = len(world.emu.calls)
    world.emu.send_message(chat, user, text)
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=chat.id)
    await world.settle()
    return reply.params["text"]


async def dashboard_login(emulator_user) -> tuple[Client, Client, object]:
    """A dashboard session and an API token for this Telegram user."""
    user = await sync_to_async(telegram_user)(emulator_user.id, emulator_user.username)
    pages = Client()
    await sync_to_async(pages.force_login)(user)
    return pages, await sync_to_async(bearer)(user), user


async def socket(user, path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def run_queue(world) -> None:
    queue = CommandQueue(world.bot_row.pk, world.application, EXECUTORS)
    while await queue.run_one():
        pass
    await world.engine.idle()


async def test_an_admin_who_set_the_group_up_loses_everything_when_demoted_and_banned(world):
    s, emu = world.scene, world.emu
    # Bob, promoted by Alice, sets Cats up himself and opens the dashboard.
    emu.promote(s.group, s.bob, by=s.alice)
    assert "now requires" in await say(world, s.group, s.bob, "/protect @catnews")
    cats = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    assert cats.setup_by_user_id == s.bob.id
    pages, api, bob = await dashboard_login(s.bob)
    assert (await sync_to_async(pages.get)(f"/groups/{cats.pk}/")).status_code == 200
    # He queues his own unban for later, and watches the group's feed and the overview.
    response = await sync_to_async(pages.post)(
        f"/groups/{cats.pk}/members/{s.bob.id}/unban/", **HTMX)
    assert response.status_code == 200
    unban = await BotCommand.objects.aget(kind="unban")
    group_feed = await socket(bob, f"/ws/feed/{cats.pk}/")
    # Birds, on another bot, stays his: the overview socket must keep it.
    birds = await sync_to_async(make_group)(title="Birds", chat_id=-1009999000001)
    await GroupAdmin.objects.acreate(group=birds, user_id=s.bob.id, can_restrict_members=True)
    overview = await socket(bob, "/ws/feed/")

    # Alice demotes him, then bans him.
    demoted_at = time.monotonic()
    emu.demote(s.group, s.bob, by=s.alice)
    emu.ban(s.group, s.bob, by=s.alice)
    await world.settle()

    # His open group feed closes as not found.
    closed = await group_feed.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": consumers.CLOSE_NOT_FOUND}
    # The overview feed keeps Birds and no longer carries Cats.
    live_feed.forward(event(cats, "restricted", user_name="Secret of Cats"))
    live_feed.forward(event(birds, "restricted", user_name="Birdwatcher"))
    frame = await overview.receive_from(timeout=10)
    assert "Birdwatcher" in frame and "Secret of Cats" not in frame
    # Every page, partial and API route into Cats answers 404.
    target = await sync_to_async(Target.of)(cats, unban)
    assert await sync_to_async(refused)(pages, api, target) == {}
    refused_after = time.monotonic() - demoted_at
    # The unban he queued before the demotion is refused when runbot gets to it.
    await run_queue(world)
    unban = await BotCommand.objects.aget(pk=unban.pk)
    assert unban.status == "failed"
    assert unban.error.endswith("Refused: You are not an administrator of Cats.")
    assert not world.calls("unbanChatMember", user_id=s.bob.id)
    assert emu.member(s.group, s.bob)["status"] == "kicked"
    # Protection is as Alice left it.
    cats = await ProtectedGroup.objects.aget(pk=cats.pk)
    assert cats.enabled and cats.fail_mode == "closed" and cats.action == "mute"
    print(f"\ndemotion -> every request refused and both sockets updated in {refused_after:.2f} s;"
          f" queued unban: {unban.status} ({unban.error})")
    await overview.disconnect()


async def test_an_admin_stripped_of_the_ban_right_cannot_ban_at_once(world):
    s, emu = world.scene, world.emu
    emu.promote(s.group, s.bob, by=s.alice)
    assert "now requires" in await say(world, s.group, s.alice, "/protect @catnews")
    cats = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    pages, api, _ = await dashboard_login(s.bob)
    # Alice takes 'Ban users' away but leaves him an admin (no status change at all).
    emu.promote(s.group, s.bob, by=s.alice, can_pin_messages=True, can_restrict_members=False)
    await world.settle()
    response = await sync_to_async(api.post)(
        "/api/v1/commands", {"group_id": cats.pk, "kind": "ban", "user_id": s.carol.id},
        content_type="application/json")
    assert response.status_code == 403 and response.json()["detail"] == BAN_RIGHT
    # He still sees the group: he is still an admin.
    assert (await sync_to_async(pages.get)(f"/groups/{cats.pk}/")).status_code == 200


async def test_a_pin_only_admin_s_ban_is_refused_naming_the_right(world):
    s, emu = world.scene, world.emu
    pat = emu.create_user("Pat", username="pat")
    emu.join(s.group, pat)
    emu.promote(s.group, pat, by=s.alice, can_pin_messages=True)
    emu.join(s.group, s.carol)
    assert "now requires" in await say(world, s.group, s.alice, "/protect @catnews")
    cats = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    # The admin list came from Telegram: Pat is an admin without 'Ban users'.
    row = await GroupAdmin.objects.aget(group=cats, user_id=pat.id)
    assert not row.can_restrict_members and not row.is_creator
    pages, api, _ = await dashboard_login(pat)

    page = await sync_to_async(pages.post)(
        f"/groups/{cats.pk}/members/{s.carol.id}/ban/", **HTMX)
    assert BAN_RIGHT.replace("'", "&#x27;") in page.content.decode()
    response = await sync_to_async(api.post)(
        "/api/v1/commands", {"group_id": cats.pk, "kind": "ban", "user_id": s.carol.id},
        content_type="application/json")
    assert response.status_code == 403 and response.json()["detail"] == BAN_RIGHT
    # Nothing was queued, and Carol was never banned.
    assert not await BotCommand.objects.filter(kind="ban").aexists()
    await run_queue(world)
    assert not world.calls("banChatMember", user_id=s.carol.id)


async def test_an_admin_who_leaves_the_group_loses_it_at_once(world):
    s, emu = world.scene, world.emu
    emu.promote(s.group, s.bob, by=s.alice)
    assert "now requires" in await say(world, s.group, s.alice, "/protect @catnews")
    cats = await ProtectedGroup.objects.aget(chat_id=s.group.id)
    pages, _, _ = await dashboard_login(s.bob)
    assert (await sync_to_async(pages.get)(f"/groups/{cats.pk}/")).status_code == 200
    emu.leave(s.group, s.bob)
    await world.settle()
    assert (await sync_to_async(pages.get)(f"/groups/{cats.pk}/")).status_code == 404
