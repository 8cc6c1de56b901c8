"""Query-count guards: pages cost a fixed number of queries, however many rows."""

import pytest
from django.test import Client
from django.urls import reverse

from analytics.tests.factory import make_channel, make_group
from dashboard.models import ApiToken
from groups.models import GroupAdmin, GroupMember
from verification.models import VerificationEvent

from .conftest import ALICE_TG


def more_groups(world, n: int = 15) -> None:
    for i in range(n):
        group = make_group(bot=world.cats.bot, title=f"Extra {i}", setup_by_user_id=ALICE_TG,
                           channels=[make_channel(bot=world.cats.bot)])
        GroupAdmin.objects.create(group=group, user_id=ALICE_TG)
        VerificationEvent.objects.create(group=group, chat_id=group.chat_id, user_id=i,
                                         outcome="restricted")


# Measured with 16 groups; session and user lookups included. The overview's
# growth figures (members verified, channel joins brought) are two of its queries;
# analytics asks which bots' calls are the owner's and how old the data is,
# and 4 more for the growth section (funnel, days, the groups' chats, member counts).
@pytest.mark.parametrize("name,limit", [
    ("overview", 19), ("groups", 6), ("channels", 7), ("bots", 6), ("analytics", 23),
    ("audit", 5), ("tokens", 5),
])
def test_a_page_costs_the_same_with_many_groups(world, django_assert_max_num_queries,
                                                name, limit):
    client = world.client(world.alice)
    more_groups(world)
    with django_assert_max_num_queries(limit):
        assert client.get(reverse(f"dashboard:{name}")).status_code == 200


def test_group_detail_costs_the_same_with_many_members_and_events(
    world, django_assert_max_num_queries
):
    client = world.client(world.alice)
    for i in range(30):
        GroupMember.objects.create(group=world.cats, user_id=9000 + i, status="restricted",
                                   restricted_by_nezuko=True)
        VerificationEvent.objects.create(group=world.cats, chat_id=world.cats.chat_id,
                                         user_id=9000 + i, outcome="restricted")
        # Some of them owed an action Telegram has not carried out yet.
        if i % 3 == 0:
            GroupMember.objects.filter(group=world.cats, user_id=9000 + i).update(
                owed_action="unmute")
    # One per table, not per row; the restricted members page, so they are counted too;
    # four more for the growth section and one for the impact preview's would-restrict events.
    with django_assert_max_num_queries(15):
        assert client.get(reverse("dashboard:group", args=[world.cats.pk])).status_code == 200


# Token lookup and its last-used stamp included. /analytics reads the API calls of
# Alice's bot (it serves only her groups), which used to be skipped as not hers.
@pytest.mark.parametrize("path,limit", [
    ("/groups", 4), ("/channels", 4), ("/bots", 5), ("/events", 4), ("/analytics", 13),
])
def test_an_api_list_costs_the_same_with_many_groups(world, django_assert_max_num_queries,
                                                     path, limit):
    _, plaintext = ApiToken.issue(world.alice, "script")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    more_groups(world)
    with django_assert_max_num_queries(limit):
        assert client.get(f"/api/v1{path}").status_code == 200
