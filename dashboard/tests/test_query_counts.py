"""Query-count guards: pages cost a fixed number of queries, however many rows."""

import pytest
from django.urls import reverse

from analytics.tests.factory import make_channel, make_group
from groups.models import GroupAdmin
from verification.models import VerificationEvent

from .conftest import ALICE_TG


def more_groups(world, n: int = 15) -> None:
    for i in range(n):
        group = make_group(bot=world.cats.bot, title=f"Extra {i}", setup_by_user_id=ALICE_TG,
                           channels=[make_channel(bot=world.cats.bot)])
        GroupAdmin.objects.create(group=group, user_id=ALICE_TG)
        VerificationEvent.objects.create(group=group, chat_id=group.chat_id, user_id=i,
                                         outcome="restricted")


# Measured with 16 groups; session and user lookups included.
@pytest.mark.parametrize("name,limit", [
    ("overview", 17), ("groups", 6), ("channels", 7), ("bots", 6), ("analytics", 18),
    ("audit", 5),
])
def test_a_page_costs_the_same_with_many_groups(world, django_assert_max_num_queries,
                                                name, limit):
    client = world.client(world.alice)
    more_groups(world)
    with django_assert_max_num_queries(limit):
        assert client.get(reverse(f"dashboard:{name}")).status_code == 200
