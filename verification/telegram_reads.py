"""What Nezuko asks Telegram: membership, permissions, admins, chats.

Reads gather facts for the rules; they change nothing in Telegram (that is
`verification.actions`). The facts are cached, each by its own rule:

* membership answers: `verification.membership` (two levels, single flight);
  `check()` is the one way the flows ask, memory first;
* the admin list: stored on the group (`GroupAdmin`) and read from
  `GroupConfig`; refreshed when older than `ADMIN_REFRESH_SECONDS`, at most
  once a minute per chat in the background, and always before restricting
  anyone (`ensure_admins`), because a stale list must never mute an admin;
* a group's default permissions: `PERMISSIONS_TTL` in the engine, since
  unmuting restores them and a raid of presses must not call getChat each.

Every call names its rate-limiter priority (`verification.priorities`).
"""

from __future__ import annotations

import asyncio
import time

import structlog
from telegram import ChatFullInfo, ChatMember, ChatPermissions
from telegram.error import BadRequest, TelegramError

from groups.config import ChannelConfig, GroupConfig, aget_group_config
from groups.services import admin_list
from verification.engine import Engine
from verification.membership import Lookup, MembershipUnknown
from verification.priorities import call_at
from verification.updates import is_member

logger = structlog.get_logger(__name__)

PERMISSIONS_TTL = 300.0
# The admin list is refreshed this often, never per message.
ADMIN_REFRESH_SECONDS = 600.0
# BadRequest texts that mean "not a member" rather than "cannot tell".
NOT_A_MEMBER = ("user not found", "participant_id_invalid", "member not found",
                "user_not_participant")


# --- membership -----------------------------------------------------------------------


async def check(engine: Engine, user_id: int, channels: tuple[ChannelConfig, ...], *,
                fresh: tuple[int, ...] = (),
                level: str = "P1") -> tuple[dict[int, bool | None], bool]:
    """`(answers, all_cached)`; channels in `fresh` are asked again at `level`."""
    async def one(channel: ChannelConfig) -> Lookup:
        key = (engine.bot_telegram_id, channel.chat_id, user_id)

        async def fetch() -> bool:
            return await fetch_membership(engine, channel.chat_id, user_id, level)

        return await engine.memberships.lookup(key, fetch, fresh=channel.chat_id in fresh)

    lookups = await asyncio.gather(*(one(c) for c in channels))
    answers = {c.chat_id: r.is_member for c, r in zip(channels, lookups, strict=True)}
    return answers, all(r.cache_hit for r in lookups)


async def fetch_membership(engine: Engine, channel_id: int, user_id: int,
                           level: str = "P1") -> bool:
    """getChatMember: True/False, or MembershipUnknown when Telegram cannot say."""
    try:
        with call_at(level):
            member = await engine.bot.get_chat_member(channel_id, user_id)
    except BadRequest as exc:
        if any(text in exc.message.lower() for text in NOT_A_MEMBER):
            return False
        logger.warning("membership.unknown", channel_id=channel_id, user_id=user_id,
                       error=exc.message)
        raise MembershipUnknown(exc.message) from exc
    except TelegramError as exc:
        logger.warning("membership.unknown", channel_id=channel_id, user_id=user_id,
                       error=str(exc))
        raise MembershipUnknown(str(exc)) from exc
    return is_member(member)


async def default_permissions(engine: Engine, chat_id: int) -> ChatPermissions:
    """The group's own default permissions (getChat), cached a few minutes.

    Unmuting restores these instead of a fixed list, so a group that forbids
    links or media for everyone keeps forbidding them.
    """
    cached = engine.permissions.get(chat_id)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    with call_at("P0"):
        chat = await engine.bot.get_chat(chat_id)
    permissions = chat.permissions or ChatPermissions(can_send_messages=True)
    engine.permissions[chat_id] = (permissions, time.monotonic() + PERMISSIONS_TTL)
    return permissions


# --- admins ---------------------------------------------------------------------------


def admins_stale(config: GroupConfig) -> bool:
    refreshed = config.admins_refreshed_at
    return refreshed is None or time.time() - refreshed > ADMIN_REFRESH_SECONDS


def refresh_admins_soon(engine: Engine, config: GroupConfig, *, force: bool = False) -> None:
    """Refresh the admin list in the background, at most once a minute per chat."""
    now = time.monotonic()
    if not force and now - engine.admin_refreshed.get(config.chat_id, -1e9) < 60:
        return
    engine.admin_refreshed[config.chat_id] = now
    engine.spawn(fetch_admins(engine, config))


async def ensure_admins(engine: Engine, config: GroupConfig) -> GroupConfig:
    """Before restricting anyone, make sure the admin list is not missing or stale.

    Concurrent callers for one chat (a raid) share one getChatAdministrators.
    """
    if not admins_stale(config):
        return config
    pending = engine.admin_fetches.get(config.chat_id)
    if pending is None:
        engine.admin_refreshed[config.chat_id] = time.monotonic()
        pending = asyncio.ensure_future(fetch_admins(engine, config))
        engine.admin_fetches[config.chat_id] = pending
        pending.add_done_callback(lambda _: engine.admin_fetches.pop(config.chat_id, None))
    if await asyncio.shield(pending):
        return await aget_group_config(engine.bot_pk, config.chat_id) or config
    return config


async def fetch_admins(engine: Engine, config: GroupConfig) -> bool:
    """Refresh the cached admin list of a group; True when it worked."""
    try:
        with call_at("P2"):
            admins = await engine.bot.get_chat_administrators(config.chat_id)
    except TelegramError as exc:
        logger.warning("admins.refresh_failed", chat_id=config.chat_id, error=str(exc))
        return False
    await admin_list.areplace_admins(config.pk, [
        {
            "user_id": a.user.id,
            "username": a.user.username or "",
            "first_name": a.user.first_name[:255],
            "is_creator": a.status == "creator",
            "is_anonymous": bool(getattr(a, "is_anonymous", False)),
            "can_restrict_members": a.status == "creator"
            or bool(getattr(a, "can_restrict_members", False)),
        }
        for a in admins
    ])
    return True


# --- chats and members ------------------------------------------------------------------


async def get_chat(engine: Engine, ref: int | str) -> ChatFullInfo | None:
    """getChat by id or @username; None when Telegram does not know it (or refuses)."""
    try:
        with call_at("P0"):
            return await engine.bot.get_chat(ref)
    except TelegramError as exc:
        logger.info("chat.lookup_failed", ref=str(ref), error=str(exc))
        return None


async def get_member(engine: Engine, chat_id: int, user_id: int) -> ChatMember | None:
    """getChatMember; None when Telegram refuses (bot not in the chat, chat gone)."""
    try:
        with call_at("P0"):
            return await engine.bot.get_chat_member(chat_id, user_id)
    except TelegramError as exc:
        logger.info("member.lookup_failed", chat_id=chat_id, user_id=user_id, error=str(exc))
        return None


async def invite_link(engine: Engine, chat_id: int, existing: str | None) -> str:
    """A private channel's join link: the primary one, exported when missing."""
    if existing:
        return existing
    try:
        with call_at("P0"):
            return await engine.bot.export_chat_invite_link(chat_id)
    except TelegramError as exc:
        logger.info("invite_link.failed", chat_id=chat_id, error=str(exc))
        return ""
