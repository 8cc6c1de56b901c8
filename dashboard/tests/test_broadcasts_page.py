"""The staff Broadcasts page: progress and results of every /broadcast, for staff only."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from bots.audit import Actor
from bots.models import AuditLog
from verification import broadcasts
from verification.models import Broadcast, Delivery

SAM = 555

pytestmark = pytest.mark.django_db


def url() -> str:
    return reverse("dashboard:broadcasts")


def sending_broadcast(world) -> Broadcast:
    """Confirmed to the owners of nezuko_bot's groups: alice (Cats), queued."""
    bot_pk = world.cats.bot_id
    draft = broadcasts.draft(bot_pk, "owners", "Maintenance on Sunday", SAM)
    broadcast = broadcasts.confirm(draft.pk, Actor(AuditLog.Source.TELEGRAM, telegram_id=SAM))
    assert broadcast is not None
    return broadcast


def cell(html: str, pk: int, status: str) -> str:
    row = re.search(rf'<tr id="broadcast-{pk}">(.*?)</tr>', html, re.S).group(1)
    return re.search(rf'data-status="{status}"[^>]*>(\d+)<', row).group(1)


class TestWhoSeesIt:
    def test_it_returns_404_to_owners_and_admins(self, world):
        sending_broadcast(world)
        for persona in ("alice", "bob", "charlie", "dave"):
            response = world.client(getattr(world, persona)).get(url())
            assert response.status_code == 404
            assert b"Maintenance" not in response.content

    def test_the_menu_links_it_for_staff_only(self, world):
        link = f'href="{url()}"'
        assert link in world.client(world.staff).get(reverse("dashboard:overview")).content.decode()
        assert link not in world.client(world.alice).get(
            reverse("dashboard:overview")).content.decode()


class TestProgress:
    def test_it_shows_what_was_sent_skipped_failed_and_queued(self, world):
        broadcast = sending_broadcast(world)
        extra = [Delivery(broadcast=broadcast, user_id=uid, status=status) for uid, status in (
            (1, Delivery.Status.SENT), (2, Delivery.Status.SENT),
            (3, Delivery.Status.SKIPPED_BLOCKED), (4, Delivery.Status.SKIPPED_OPTED_OUT),
            (5, Delivery.Status.FAILED), (6, Delivery.Status.UNKNOWN))]
        Delivery.objects.bulk_create(extra)
        html = world.client(world.staff).get(url()).content.decode()
        # alice's delivery is still queued; the others are as written.
        assert cell(html, broadcast.pk, "sent") == "2"
        assert cell(html, broadcast.pk, "skipped") == "2"
        assert cell(html, broadcast.pk, "failed") == "2"
        assert cell(html, broadcast.pk, "queued") == "1"
        # While it is sending, the table polls for itself.
        assert 'hx-trigger="every 3s"' in html

    def test_a_finished_broadcast_stops_the_polling(self, world):
        broadcast = sending_broadcast(world)
        Delivery.objects.filter(broadcast=broadcast).update(status=Delivery.Status.SENT)
        broadcasts.finish_done(broadcast.bot_id)
        response = world.client(world.staff).get(url(), headers={"HX-Request": "true"})
        html = response.content.decode()
        # The htmx request gets the table alone, and no poll once nothing is sending.
        assert "<h1>" not in html and 'id="broadcast-table"' in html
        assert "hx-trigger" not in html and "finished" in html

    def test_drafts_are_not_listed(self, world):
        broadcasts.draft(world.cats.bot_id, "all", "Not confirmed", SAM)
        html = world.client(world.staff).get(url()).content.decode()
        assert "Not confirmed" not in html and "No broadcast yet" in html


