"""The cast of the security suite.

`people` are the dashboard's personas (dashboard/tests/conftest.py): alice
created Cats, bob administers it with the 'Ban users' right, charlie created
Dogs, dave administers Cats read-only, staff sees all; plus pat, an admin of
Cats whose only right is pinning messages, and one queued command per group.

`world` (verification/tests/conftest.py) is the real engine polling the Bot API
emulator, for attacks that go through Telegram itself.
"""

from __future__ import annotations

import dataclasses

import pytest
from django.contrib.auth.models import User
from django.test import Client

from bots.models import BotCommand
from dashboard.models import ApiToken
from dashboard.tests.conftest import (
    Personas,
    build_world,
    close_thread_connections,  # noqa: F401 - a fixture the websocket tests use
    telegram_user,
)
from groups.models import GroupAdmin, ProtectedGroup
from verification.tests.conftest import (  # noqa: F401 - fixtures
    command_interval,
    event_subscribers,
    limits,
    menu_languages,
    world,
)

PAT_TG = 1005


@dataclasses.dataclass
class Cast(Personas):
    pat: User | None = None
    cats_command: BotCommand | None = None
    dogs_command: BotCommand | None = None


@pytest.fixture
def people(db) -> Cast:
    base = build_world()
    pat = telegram_user(PAT_TG, "pat")
    GroupAdmin.objects.create(group=base.cats, user_id=PAT_TG, username="pat",
                              can_restrict_members=False)
    return Cast(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Personas)}, pat=pat,
                cats_command=queued(base.cats, base.alice), dogs_command=queued(base.dogs,
                                                                                base.charlie))


def queued(group: ProtectedGroup, by: User) -> BotCommand:
    return BotCommand.objects.create(bot=group.bot, kind="unmute", requested_by=by,
                                     payload={"group_id": group.pk, "chat_id": group.chat_id,
                                              "user_id": 4242})


def bearer(user: User) -> Client:
    """An API client holding a personal token of `user`."""
    _, plaintext = ApiToken.issue(user, "attack")
    return Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
