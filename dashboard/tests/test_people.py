"""The people page and GET /api/v1/people: an owner sees the people of their own groups only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from django.utils import timezone

from bots import referrals
from bots.models import BotUser, TelegramUser

API = "/api/v1"


@pytest.fixture
def people(world):
    """Mallory (seen in Cats, blocked its bot), Rex (seen in Dogs, blocked its bot),
    Rita (came through alice's link, in no group), Gus (came through the Dogs link),
    and Ana (seen in Cats, blocked only the Dogs bot)."""
    cats_bot, dogs_bot = world.cats.bot, world.dogs.bot
    now = timezone.now()
    mallory = TelegramUser.objects.create(telegram_id=4242, first_name="Mallory",
                                          username="mal", language_code="en-GB")
    rex = TelegramUser.objects.create(telegram_id=4343, first_name="Rex", language_code="de")
    rita = TelegramUser.objects.create(telegram_id=5050, first_name="Rita", language_code="es",
                                       referred_by_user=world.alice, referred_at=now)
    gus = TelegramUser.objects.create(telegram_id=6060, first_name="Gus",
                                      referred_by_group_id=world.dogs.pk, referred_at=now)
    ana = TelegramUser.objects.create(telegram_id=7070, first_name="Ana", language_code="en")
    world.cats.members.create(user_id=7070, first_name="Ana")
    BotUser.objects.create(bot=cats_bot, user=mallory, blocked_at=now)
    BotUser.objects.create(bot=dogs_bot, user=rex, blocked_at=now)
    BotUser.objects.create(bot=dogs_bot, user=ana, blocked_at=now)
    BotUser.objects.create(bot=cats_bot, user=ana)
    return {"mallory": mallory, "rex": rex, "rita": rita, "gus": gus, "ana": ana}


def page_ids(world, user, **params) -> set[int]:
    response = world.client(user).get(reverse("dashboard:people"), params)
    assert response.status_code == 200
    return {p.telegram_id for p in response.context["page"]}


def api(world, user, **params):
    return world.client(user).get(f"{API}/people", params)


def api_ids(world, user, **params) -> set[int]:
    response = api(world, user, **params)
    assert response.status_code == 200, response.content
    return {p["telegram_id"] for p in response.json()["items"]}


@pytest.mark.django_db
class TestScope:
    def test_an_owner_sees_the_people_of_their_groups_and_their_referrals_only(
            self, world, people):
        assert page_ids(world, world.alice) == {4242, 5050, 7070}
        assert page_ids(world, world.charlie) == {4343, 6060}
        # bob administers Cats: its people, not alice's own referrals.
        assert page_ids(world, world.bob) == {4242, 7070}
        assert page_ids(world, world.staff) == {4242, 4343, 5050, 6060, 7070}

    def test_the_api_has_the_same_scope(self, world, people):
        assert api_ids(world, world.alice) == {4242, 5050, 7070}
        assert api_ids(world, world.charlie) == {4343, 6060}
        assert api_ids(world, world.staff) == {4242, 4343, 5050, 6060, 7070}
        assert api(world, None).status_code == 401

    def test_another_owners_group_is_a_404(self, world, people):
        assert api(world, world.alice, group=world.dogs.pk).status_code == 404
        response = world.client(world.alice).get(reverse("dashboard:people"),
                                                 {"group": world.dogs.pk})
        assert response.status_code == 404

    def test_a_block_of_another_owners_bot_is_not_shown(self, world, people):
        ana = next(p for p in api(world, world.alice).json()["items"]
                   if p["telegram_id"] == 7070)
        assert ana["blocked"] is False
        assert api_ids(world, world.alice, blocked=True) == {4242}
        assert api_ids(world, world.staff, blocked=True) == {4242, 4343, 7070}

    def test_someone_elses_referral_is_not_shown(self, world, people):
        # Gus came through the Dogs link; say alice's Cats saw him too.
        world.cats.members.create(user_id=6060, first_name="Gus")
        gus = next(p for p in api(world, world.alice).json()["items"]
                   if p["telegram_id"] == 6060)
        assert (gus["referred_by"], gus["referred_at"]) == ("", None)
        assert 6060 not in api_ids(world, world.alice, referred=True)
        assert 6060 in api_ids(world, world.charlie, referred=True)


@pytest.mark.django_db
class TestFilters:
    def test_group_language_blocked_and_referred(self, world, people):
        assert api_ids(world, world.alice, group=world.cats.pk) == {4242, 7070}
        # "en" matches en-GB too; codes are matched without case.
        assert api_ids(world, world.alice, language="en") == {4242, 7070}
        assert api_ids(world, world.alice, language="EN-gb") == {4242}
        assert api_ids(world, world.alice, blocked=False) == {5050, 7070}
        assert api_ids(world, world.alice, referred=True) == {5050}
        assert api_ids(world, world.alice, referred=False) == {4242, 7070}
        assert page_ids(world, world.alice, language="es", referred="yes") == {5050}

    def test_a_bad_filter_is_a_clear_error_on_the_api_and_ignored_on_the_page(
            self, world, people):
        response = api(world, world.alice, language="en'; drop")
        assert response.status_code == 422
        assert page_ids(world, world.alice, language="en'; drop", blocked="maybe") == {
            4242, 5050, 7070}

    def test_pages(self, world, people):
        first = api(world, world.staff, limit=2).json()
        assert (len(first["items"]), first["count"], first["next_page"]) == (2, 5, 2)
        last = api(world, world.staff, limit=2, page=3).json()
        assert (len(last["items"]), last["next_page"]) == (1, None)

    def test_each_person_says_where_they_were_seen_and_who_brought_them(self, world, people):
        items = {p["telegram_id"]: p for p in api(world, world.alice).json()["items"]}
        assert items[4242]["groups"] == [world.cats.pk]
        assert items[5050]["referred_by"] == "@alice"
        assert items[5050]["groups"] == []


@pytest.mark.django_db
class TestReferralLinks:
    def test_the_owner_and_group_links_verify_and_name_the_right_one(self, world):
        links = world.client(world.alice).get(f"{API}/referral-links").json()
        [owner] = links["owner"]
        assert owner["bot"] == "@nezuko_bot"
        payload = parse_qs(urlparse(owner["url"]).query)["start"][0]
        assert referrals.read(payload) == referrals.Referral(referrals.OWNER, world.alice.pk)
        assert [g["group_id"] for g in links["groups"]] == [world.cats.pk]
        payload = parse_qs(urlparse(links["groups"][0]["url"]).query)["start"][0]
        assert referrals.read(payload) == referrals.Referral(referrals.GROUP, world.cats.pk)

    def test_the_people_page_shows_the_owner_link_and_the_group_page_its_own(self, world):
        page = world.client(world.alice).get(reverse("dashboard:people")).content.decode()
        assert referrals.owner_link("nezuko_bot", world.alice.pk) in page
        group_page = world.client(world.alice).get(
            reverse("dashboard:group", args=[world.cats.pk])).content.decode()
        assert referrals.group_link("nezuko_bot", world.cats.pk) in group_page
