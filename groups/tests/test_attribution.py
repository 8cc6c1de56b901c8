"""The funnel's ledger operations: which group a join counts for, and day sums that a
replay or a redelivered update cannot double."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from groups import attribution
from groups.models import Attribution, FunnelDay, GroupChannel
from tests.factories import make_bot, make_channel, make_group

pytestmark = pytest.mark.django_db

NEWS = -1001


@pytest.fixture
def groups():
    bot = make_bot()
    news = make_channel(bot, chat_id=NEWS, title="Cat News", username="catnews")
    cats = make_group(bot, channels=[news], title="Cats")
    dogs = make_group(bot, channels=[news], title="Dogs")
    GroupChannel.objects.filter(group=cats).update(invite_link="https://t.me/+cats")
    return bot, cats, dogs


def warn(group, user_id, at):
    attribution._warned(group_pk=group.pk, channel_chat_ids=[NEWS], user_id=user_id, at=at)


def join(bot, user_id, at, link=""):
    attribution._joined(bot_pk=bot.pk, channel_chat_id=NEWS, user_id=user_id,
                        invite_link=link, at=at)


def sums(group):
    return FunnelDay.objects.filter(group_id=group.pk).funnel()


def test_a_join_through_a_groups_link_counts_for_it_even_after_anothers_warning(groups):
    bot, cats, dogs = groups
    now = timezone.now()
    warn(dogs, 7, now - timedelta(hours=1))
    join(bot, 7, now, link="https://t.me/+cats")
    # It should be Cats' exact join, started by the join itself; Dogs' warning stays unjoined.
    assert Attribution.objects.get(group=cats, user_id=7).how == "exact"
    assert Attribution.objects.get(group=dogs, user_id=7).joined_at is None
    assert (sums(cats)["started"], sums(cats)["joined_exact"], sums(cats)["warned"]) == (1, 1, 0)


def test_a_join_without_a_link_goes_to_the_latest_warning_within_a_day(groups):
    bot, cats, dogs = groups
    now = timezone.now()
    warn(cats, 7, now - timedelta(hours=5))
    warn(dogs, 7, now - timedelta(hours=2))
    warn(cats, 8, now - timedelta(hours=25))
    join(bot, 7, now)
    join(bot, 8, now)
    assert Attribution.objects.get(group=dogs, user_id=7).how == "likely"
    assert Attribution.objects.get(group=cats, user_id=7).how == ""
    # A warning 25 hours old brings no credit.
    assert Attribution.objects.get(group=cats, user_id=8).how == ""
    assert sums(cats)["joined_likely"] == 0 and sums(dogs)["joined_likely"] == 1


def test_applying_an_operation_twice_counts_it_once(groups):
    bot, cats, _ = groups
    now = timezone.now()
    for _ in range(2):  # a replayed spool batch, a redelivered update
        warn(cats, 7, now - timedelta(minutes=5))
        join(bot, 7, now - timedelta(minutes=4), link="https://t.me/+cats")
        attribution._verified(group_pk=cats.pk, user_id=7, at=now - timedelta(minutes=3))
        attribution._left(bot_pk=bot.pk, channel_chat_id=NEWS, user_id=7, at=now)
    funnel = sums(cats)
    assert (funnel["warned"], funnel["joined_exact"], funnel["verified"]) == (1, 1, 1)
    assert FunnelDay.objects.get(group_id=cats.pk).left_7d == 1


def test_retention_counts_those_who_joined_long_enough_ago(groups):
    bot, cats, _ = groups
    now = timezone.now()
    for user_id, joined, left in ((1, 12, None), (2, 11, 8), (3, 10, 1), (4, 2, None)):
        warn(cats, user_id, now - timedelta(days=joined, hours=1))
        join(bot, user_id, now - timedelta(days=joined), link="https://t.me/+cats")
        if left is not None:
            attribution._left(bot_pk=bot.pk, channel_chat_id=NEWS, user_id=user_id,
                              at=now - timedelta(days=left))
    funnel = sums(cats)
    # Joined 7+ days ago: three; one left after 9 days (kept), one after 3 days (not).
    assert (funnel["due_7d"], funnel["kept_7d"]) == (3, 2)
    assert (funnel["due_30d"], funnel["kept_30d"]) == (0, 0)
