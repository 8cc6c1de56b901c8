"""The growth section (group and analytics pages) and /api/v1/growth: the funnel's
figures from the journeys, for the groups the gate allows only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import SizeSample
from groups import attribution

pytestmark = pytest.mark.django_db

@pytest.fixture
def journeys(world):
    """In Cats: four warned, two joined through the group's link (one of them left
    two days later), one joined without it, one never; Dogs has one of its own."""
    now = timezone.now()
    cats, dogs = world.cats, world.dogs
    news = cats.links.get().channel
    link = cats.links.get()
    link.invite_link = "https://t.me/+cats"
    link.save()
    ago = lambda days: now - timedelta(days=days)  # noqa: E731
    for user_id, warned in ((1, 10), (2, 9), (3, 1), (4, 1)):
        attribution._warned(group_pk=cats.pk, channel_chat_ids=[news.chat_id], user_id=user_id,
                            at=ago(warned))
    attribution._joined(bot_pk=cats.bot_id, channel_chat_id=news.chat_id, user_id=1,
                        invite_link="https://t.me/+cats", at=ago(9.9))
    attribution._joined(bot_pk=cats.bot_id, channel_chat_id=news.chat_id, user_id=2,
                        invite_link="https://t.me/+cats", at=ago(8.9))
    attribution._joined(bot_pk=cats.bot_id, channel_chat_id=news.chat_id, user_id=3,
                        invite_link="", at=ago(0.5))
    for user_id, joined in ((1, 9.9), (2, 8.9), (3, 0.5)):
        attribution._verified(group_pk=cats.pk, user_id=user_id, at=ago(joined - 0.01))
    attribution._left(bot_pk=cats.bot_id, channel_chat_id=news.chat_id, user_id=2,
                      at=ago(6.9))
    dog_news = dogs.links.get().channel
    attribution._warned(group_pk=dogs.pk, channel_chat_ids=[dog_news.chat_id], user_id=9,
                        at=ago(1))
    SizeSample.objects.create(day=ago(3).date(), bot_id=cats.bot_id, chat_id=news.chat_id,
                              kind="channel", count=100)
    SizeSample.objects.create(day=now.date(), bot_id=cats.bot_id, chat_id=news.chat_id,
                              kind="channel", count=103)
    return news


def test_the_api_counts_each_stage_of_the_owners_groups(world, journeys):
    response = world.client(world.alice).get("/api/v1/growth?period=30d")
    assert response.status_code == 200
    data = response.json()
    # It should count Cats' four journeys, not Dogs' one.
    funnel = data["funnel"]
    assert (funnel["warned"], funnel["joined_exact"], funnel["joined_likely"],
            funnel["verified"]) == (4, 2, 1, 3)
    # Joined 7+ days ago: two; one left after two days, so one stayed 7 days.
    assert (funnel["due_7d"], funnel["kept_7d"]) == (2, 1)
    assert (funnel["due_30d"], funnel["kept_30d"]) == (0, 0)
    (channel,) = data["channels"]
    assert channel["channel"] == "Cat News" and channel["warned"] == 4
    assert sum(day["warned"] for day in data["days"]) == 4
    assert [s["count"] for s in data["sizes"]] == [100, 103]


def test_the_api_returns_404_for_another_owners_group(world, journeys):
    response = world.client(world.alice).get(f"/api/v1/growth?group={world.dogs.pk}")
    assert response.status_code == 404
    # Charlie sees his own group's journey only.
    data = world.client(world.charlie).get("/api/v1/growth").json()
    assert data["funnel"]["warned"] == 1


def test_the_group_page_shows_the_funnel_and_the_member_counts(world, journeys):
    page = world.client(world.alice).get(f"/groups/{world.cats.pk}/").content.decode()
    assert 'id="growth-funnel"' in page
    # Warned 4, joined 3 (75%), 2 exact / 1 likely, verified 3, 1 of 2 after 7 days.
    assert "3 <span class=\"muted\">(75%)</span>" in page
    assert "2 / 1" in page
    assert "1 of 2 (50%)" in page
    assert "+3 since" in page


def test_the_analytics_page_has_the_growth_section_with_an_empty_state(world):
    page = world.client(world.alice).get("/analytics/").content.decode()
    assert "Nobody was warned in this period yet" in page
