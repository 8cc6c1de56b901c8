"""What Nezuko asks Telegram: membership, permissions, admins, chats.

Reads gather facts for the rules; they change nothing in Telegram (that is
`verification.actions`). The facts are cached, each by its own rule:

* membership answers: `verification.membership` (two levels, single flight,
  hours-long "yes" answers kept true by the channels' chat_member updates);
  `check()` is the one way the flows ask, memory first; `refresh_due()`
  asks again, at the lowest priority, for answers in use near their end;
* the admin list: stored on the group (`GroupAdmin`) and read from
  `GroupConfig`. Promotions and demotions arrive as chat_member updates and
  force a refresh at once, so the background refresh is a safety net: when a
  message arrives and the list is older than `admin_refresh_age` (an hour
  plus a per-chat share, so groups refreshed together come due apart; an
  idle group is never refreshed), at the lowest priority, at most once a
  minute per chat. Before restricting anyone (`ensure_admins`) a list older
  than `ADMIN_REFRESH_SECONDS` is refreshed first, because a stale list must
  never mute an admin;
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
from verification.membership import Key, Lookup, MembershipUnknown
from verification.priorities import call_at, in_background
from verification.updates import is_member

logger = structlog.get_logger(__name__)

PERMISSIONS_TTL = 300.0
# Before restricting anyone, an admin list older than this is refreshed first.
ADMIN_REFRESH_SECONDS = 600.0
# In the background (chat_member updates keep the list fresh in between) lists are
# refreshed this often, plus up to ADMIN_REFRESH_SPREAD of it, a share fixed per chat.
ADMIN_BACKGROUND_REFRESH_SECONDS = 3600.0
ADMIN_REFRESH_SPREAD = 0.5
# Background membership refreshes a bot keeps in flight at once (the limiter paces them).
REFRESH_CONCURRENCY = 8
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


async def refresh_due(engine: Engine, limit: int = 500) -> int:
    """Ask again, at the lowest priority, for answers in use that near their end.

    Up to `limit` keys, `REFRESH_CONCURRENCY` at a time (bounded: no task per
    key). An answer another process refreshed is taken from the shared level
    instead; an unknown answer is left to expire. Returns the calls made.
    """
    keys = engine.memberships.take_due(engine.bot_telegram_id, limit)
    calls = 0

    async def one(key: Key) -> None:
        nonlocal calls
        if engine.memberships.adopt_shared(key):
            return
        calls += 1
        try:
            with in_background():
                value = await fetch_membership(engine, key[1], key[2], "P2")
        except MembershipUnknown:
            return
        engine.memberships.remember(key, value)

    for start in range(0, len(keys), REFRESH_CONCURRENCY):
        await asyncio.gather(*(one(k) for k in keys[start:start + REFRESH_CONCURRENCY]))
    return calls


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
    """Too old to restrict on (`ensure_admins` refreshes it first)."""
    return _age(config) > ADMIN_REFRESH_SECONDS


def _age(config: GroupConfig) -> float:
    refreshed = config.admins_refreshed_at
    return float("inf") if refreshed is None else time.time() - refreshed


def admin_refresh_age(chat_id: int) -> float:
    """How old this chat's admin list may get before a background refresh: fixed per
    chat, spread between chats, so lists refreshed together come due apart."""
    share = (chat_id * 2654435761 % 1000) / 1000  # a stable hash: same chat, same age
    return ADMIN_BACKGROUND_REFRESH_SECONDS * (1 + ADMIN_REFRESH_SPREAD * share)


def refresh_admins_soon(engine: Engine, config: GroupConfig, *, force: bool = False) -> None:
    """Refresh the admin list in the background, at the lowest priority, when it is
    older than this chat's `admin_refresh_age`; at most once a minute per chat."""
    if not force and _age(config) <= admin_refresh_age(config.chat_id):
        return
    now = time.monotonic()
    if not force and now - engine.admin_refreshed.get(config.chat_id, -1e9) < 60:
        return
    engine.admin_refreshed[config.chat_id] = now
    engine.spawn(_fetch_admins_in_background(engine, config))


async def _fetch_admins_in_background(engine: Engine, config: GroupConfig) -> bool:
    with in_background():
        return await fetch_admins(engine, config)


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
