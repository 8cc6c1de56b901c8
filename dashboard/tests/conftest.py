"""The same people in every dashboard test.

Rights follow Telegram, so each person's standing is their row in the cached
admin list: alice created "Cats" (and ran /protect there); bob administers Cats
with the 'Ban users' right; charlie created "Dogs"; dave administers Cats but has
the dashboard's read-only role; staff sees all.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.db import connections
from django.test import Client

from analytics.tests.factory import make_bot, make_channel, make_group
from dashboard.access import READ_ONLY_GROUP
from dashboard.models import TelegramAccount
from groups.models import GroupAdmin, GroupMember, ProtectedGroup

ALICE_TG, BOB_TG, CHARLIE_TG, DAVE_TG = 1001, 1002, 1003, 1004


def telegram_user(telegram_id: int, name: str) -> User:
    user = User.objects.create(username=f"tg{telegram_id}", first_name=name.capitalize())
    user.set_unusable_password()
    user.save()
    TelegramAccount.objects.create(user=user, telegram_id=telegram_id, username=name)
    return user


@dataclass
class Personas:
    """alice, bob, charlie, dave, staff and their two groups, Cats and Dogs."""

    alice: User
    bob: User
    charlie: User
    dave: User
    staff: User
    cats: ProtectedGroup
    dogs: ProtectedGroup

    def client(self, user: User | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client


@pytest.fixture
def world(db) -> Personas:
    return build_world()


def build_world() -> Personas:
    """The personas and their two groups (tests/security builds on them too)."""
    bot = make_bot(username="nezuko_bot")
    other_bot = make_bot(username="dogs_bot")
    cats = make_group(bot=bot, title="Cats", setup_by_user_id=ALICE_TG, setup_by_name="Alice",
                      channels=[make_channel(bot=bot, title="Cat News", username="catnews")])
    dogs = make_group(bot=other_bot, title="Dogs", setup_by_user_id=CHARLIE_TG,
                      channels=[make_channel(bot=other_bot, title="Dog News")])
    GroupAdmin.objects.create(group=cats, user_id=ALICE_TG, username="alice", is_creator=True,
                              can_restrict_members=True)
    GroupAdmin.objects.create(group=cats, user_id=BOB_TG, username="bob",
                              can_restrict_members=True)
    GroupAdmin.objects.create(group=cats, user_id=DAVE_TG, username="dave",
                              can_restrict_members=True)
    GroupAdmin.objects.create(group=dogs, user_id=CHARLIE_TG, username="charlie",
                              is_creator=True, can_restrict_members=True)
    GroupMember.objects.create(group=cats, user_id=4242, first_name="Mallory",
                               status="restricted", restricted_by_nezuko=True)
    GroupMember.objects.create(group=dogs, user_id=4343, first_name="Rex",
                               status="restricted", restricted_by_nezuko=True)
    dave = telegram_user(DAVE_TG, "dave")
    dave.groups.add(Group.objects.get_or_create(name=READ_ONLY_GROUP)[0])
    staff = User.objects.create_user("root", password="correct horse battery", is_staff=True)
    return Personas(
        alice=telegram_user(ALICE_TG, "alice"), bob=telegram_user(BOB_TG, "bob"),
        charlie=telegram_user(CHARLIE_TG, "charlie"), dave=dave, staff=staff,
        cats=cats, dogs=dogs,
    )


@pytest.fixture
async def close_thread_connections():
    """Async tests reach the ORM from asgiref's worker thread, which no request
    cycle cleans up; close its connections so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all)()
