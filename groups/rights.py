"""Who may do what in a group: the person's Telegram rights there, now.

The dashboard, the API, the websocket and the command queue all ask `may`;
nothing is granted for having set a group up once. A person's standing in a
group is their row in the cached admin list (`GroupAdmin`, refreshed by the
engine from getChatAdministrators), kept current between refreshes by
`note_standing`, which the engine calls on every chat_member update that
changes someone's admin status or rights.

    may("ban", row, group_title="Cats")  # None: allowed; a Refusal: why not
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Protocol

import structlog
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from groups.models import GroupAdmin, ProtectedGroup

logger = structlog.get_logger(__name__)

ADMIN = "administrator"
RESTRICT = "can_restrict_members"
SEND_TIMEOUT_SECONDS = 1.0

# What Telegram's apps call each right, so a refusal reads like the admin screen.
# Translators: the names Telegram's admin screen gives these rights.
LABELS = {
    ADMIN: pgettext_lazy("telegram right", "administrator"),
    RESTRICT: pgettext_lazy("telegram right", "Ban users"),
}

# The right each action needs; ADMIN means "any admin". The creator may do all.
ACTIONS: dict[str, str] = {
    "view": ADMIN,
    "ban": RESTRICT,
    "unban": RESTRICT,
    "unmute": RESTRICT,
    "recheck": RESTRICT,
    "settings": RESTRICT,
    "protect": RESTRICT,
    "unprotect": RESTRICT,
    "enable": RESTRICT,
    "disable": RESTRICT,
}

# Dashboard commands (BotCommand.kind) and the action each one is.
COMMAND_ACTIONS = {
    "unmute": "unmute", "ban": "ban", "unban": "unban", "recheck": "recheck",
    "refresh_admins": "settings", "warm_cache": "settings",
}


class Standing(Protocol):
    """What `may` reads of an admin row (GroupAdmin has these fields)."""

    is_creator: bool
    can_restrict_members: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    action: str
    missing: str  # ADMIN or the name of the missing right
    group_title: str

    @property
    def message(self) -> str:
        # An empty title is a group not named yet (the default of `may`).
        group = self.group_title or _("this group")
        if self.missing == ADMIN:
            # Translators: group: a group's title, or "this group".
            return _("You are not an administrator of %(group)s.") % {"group": group}
        label = LABELS.get(self.missing, self.missing)
        # Translators: right: a right's name in Telegram's admin screen ("Ban users").
        return _("You need the '%(right)s' right in %(group)s.") % {"right": label,
                                                                     "group": group}

    def __str__(self) -> str:
        return self.message


def command_action(kind: str) -> str:
    """The action a queued command is; kinds nobody knows need the settings right."""
    return COMMAND_ACTIONS.get(kind, "settings")


def may(action: str, admin: Standing | None, *, group_title: str = "") -> Refusal | None:
    """None when `admin` (their admin row, None if they are not one) may do `action`.

    Raises KeyError for an action nobody declared, so a new action cannot slip
    through unchecked.
    """
    needed = ACTIONS[action]
    if admin is None:
        return Refusal(action, ADMIN, group_title)
    if admin.is_creator or needed == ADMIN:
        return None
    if not getattr(admin, needed, False):
        return Refusal(action, needed, group_title)
    return None


# --- keeping the admin list current between refreshes ----------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AdminStanding:
    """Someone's place in a group as one chat_member update shows it."""

    is_admin: bool
    is_creator: bool
    can_restrict_members: bool
    is_anonymous: bool = False

    @classmethod
    def of(cls, status: str, fields: dict[str, Any]) -> AdminStanding:
        """From a ChatMember's status and its `to_dict()`."""
        creator = status == "creator"
        admin = creator or status == ADMIN
        return cls(
            is_admin=admin,
            is_creator=creator,
            # Telegram omits the right for creators, who hold every right.
            can_restrict_members=creator or (admin and bool(fields.get(RESTRICT))),
            is_anonymous=admin and bool(fields.get("is_anonymous")),
        )


def rights_feed(telegram_id: int) -> str:
    """The channel-layer group a person's open websockets listen on for rights changes."""
    return f"rights.{telegram_id}"


def note_standing(bot_id: int, chat_id: int, user_id: int, standing: AdminStanding, *,
                  username: str = "", first_name: str = "") -> bool:
    """Write what a chat_member update says about an admin, at once.

    A demoted, banned or departed admin loses their row (and with it the
    dashboard) now, not at the next getChatAdministrators refresh; a promoted
    one, or one whose rights changed, gets their row as Telegram shows it.
    Returns whether the group is one Nezuko knows (protected or not).
    """
    group_pk = ProtectedGroup.objects.filter(bot_id=bot_id, chat_id=chat_id).values_list(
        "pk", flat=True).first()
    if group_pk is None:
        return False
    with transaction.atomic():
        if not standing.is_admin:
            # Through the model so the delete signal bumps the configuration version.
            for row in GroupAdmin.objects.filter(group_id=group_pk, user_id=user_id):
                row.delete()
        else:
            GroupAdmin.objects.update_or_create(
                group_id=group_pk, user_id=user_id,
                defaults={"is_creator": standing.is_creator,
                          "is_anonymous": standing.is_anonymous,
                          "can_restrict_members": standing.can_restrict_members,
                          "username": username[:64], "first_name": first_name[:255]},
            )
    logger.info("admin.standing_changed", chat_id=chat_id, user_id=user_id,
                is_admin=standing.is_admin, can_restrict_members=standing.can_restrict_members)
    return True


async def anote_standing(bot_id: int, chat_id: int, user_id: int, standing: AdminStanding, *,
                         username: str = "", first_name: str = "") -> bool:
    """`note_standing`, then tell the person's open websockets to re-check."""
    known = await sync_to_async(note_standing)(bot_id, chat_id, user_id, standing,
                                               username=username, first_name=first_name)
    if known:
        await tell_open_feeds(user_id)
    return known


async def tell_open_feeds(user_id: int) -> None:
    """Ask this person's open websockets to re-check what they may see.

    Best effort: the sockets also re-check on a timer, so a channel layer that
    is down delays the loss by seconds; it never fails the update.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # Bounded: a Redis outage must not hold up the update that changed the rights.
        async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
            await layer.group_send(rights_feed(user_id), {"type": "rights.changed"})
    except Exception:
        logger.warning("admin.standing_not_sent", user_id=user_id, exc_info=True)


# --- the command queue: is the person who queued this still allowed? ----------------


def command_refusal(command: Any, group_pk: int, group_title: str) -> Refusal | None:
    """Re-check a queued command against its requester's rights now.

    Staff commands and commands the system queued (no requester, no Telegram
    id) run. A dashboard or API user's command carries the Telegram id it was
    queued under (`payload["actor_telegram_id"]`); it runs only while that id
    still holds the right in the group, so an admin demoted after queuing an
    unban does not get it.
    """
    action = command_action(command.kind)
    user = command.requested_by
    actor_telegram_id = (command.payload or {}).get("actor_telegram_id")
    if user is not None and user.is_active and user.is_staff:
        return None
    if user is None and actor_telegram_id is None:
        return None
    if (user is not None and not user.is_active) or not isinstance(actor_telegram_id, int):
        return Refusal(action, ADMIN, group_title)
    admin = GroupAdmin.objects.filter(group_id=group_pk, user_id=actor_telegram_id).first()
    return may(action, admin, group_title=group_title)


acommand_refusal = sync_to_async(command_refusal)
