"""How the dashboard, the API and admin call the domain services.

The changes themselves live in one place each (`groups.services.protection`,
`.settings`, `.members`, `bots.registration`): they validate, check the
actor's rights, apply and audit. The pages and the API call the tenancy gate
first (`dashboard.access`: 404 outside one's scope), then a service with the
`Actor` built here from the signed-in account.
"""

from __future__ import annotations

from typing import Any

from bots import audit
from bots.audit import Actor
from dashboard import access


class ServiceError(Exception):
    """A change that cannot be made; the message is safe to show."""


def actor_for(user: Any, source: str) -> Actor:
    """The signed-in account as the services see it.

    A Telegram login acts as that Telegram person (their rights in each group
    follow the cached admin list) and is named as Telegram shows them.
    """
    name = audit.telegram_name(user) or user.get_username() if user.is_authenticated else ""
    return Actor(
        source, name=name, user=user, telegram_id=access.telegram_id_of(user),
        staff=access.sees_everything(user), read_only=not access.can_change(user),
    )
