"""A protected group's configuration as the engine reads it: frozen and cached.

Every message in every group the bot sits in asks "is this chat protected, and
how?", so the answer comes from process memory. It is loaded once per chat
(unprotected chats are cached too, as None) and dropped when:

* a ProtectedGroup, EnforcedChannel, link or admin row changes in this process
  (signals, see groups/signals.py), or
* another process (the dashboard, admin, a second runbot) changed one: every
  change bumps a version number in the database (`ConfigVersion`, committed
  with the change, so a Redis outage cannot lose it). Loads compare their
  version with it at most every `VERSION_CHECK_SECONDS`; the hot path, which
  must not query from the event loop, relies on `ConfigCache.watch()`, which
  runbot runs beside its bots and which checks on the same timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable

import structlog
from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import F

from groups.models import (
    ConfigVersion,
    GroupAdmin,
    GroupChannel,
    ProtectedGroup,
    required_channels,
)

logger = structlog.get_logger(__name__)

VERSION_CHECK_SECONDS = 2.0
# After the database failed to answer, wait this long before asking it again.
VERSION_RETRY_SECONDS = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelConfig:
    pk: int
    chat_id: int
    title: str
    username: str
    # Where Join buttons send people: this group's own invite link when the bot made
    # one (joins through it are attributed to the group), else the channel's link.
    join_url: str
    # The channel's own public or primary link, whichever group asks.
    channel_url: str = ""

    @property
    def has_own_link(self) -> bool:
        return bool(self.join_url) and self.join_url != self.channel_url

    @property
    def label(self) -> str:
        return self.title or (f"@{self.username}" if self.username else str(self.chat_id))


@dataclasses.dataclass(frozen=True, slots=True)
class GroupConfig:
    pk: int
    bot_id: int
    chat_id: int
    title: str
    enabled: bool
    is_forum: bool
    action: str
    fail_mode: str
    warning_delete_after: int
    join_request_timeout: int
    warning_text: str
    channels: tuple[ChannelConfig, ...]
    admin_ids: frozenset[int]
    allowed_user_ids: frozenset[int]
    admins_refreshed_at: float | None = None  # epoch seconds
    linked_chat_id: int | None = None  # the channel whose discussion group this is
    policy: str = "all"  # ProtectedGroup.policy: all, any, or a number of channels
    captcha: bool = False  # newcomers must answer a question (verification/captcha.py)
    captcha_timeout: int = 120
    throttle: int = 60  # seconds between answers to one non-admin's commands
    language: str = "auto"  # ProtectedGroup.language: auto or a shipped code
    members_language: str = ""  # what auto meant when last written down
    # Custom warnings per language, (code, text) pairs (ProtectedGroup.warning_texts).
    warning_texts: tuple[tuple[str, str], ...] = ()

    def warning_text_in(self, language: str) -> str:
        """The custom warning for readers of `language`: theirs, else the group's own
        (`warning_text`), else "" (the built-in text)."""
        return dict(self.warning_texts).get(language) or self.warning_text

    @property
    def protecting(self) -> bool:
        """Enforce only when switched on and at least one channel is linked."""
        return self.enabled and bool(self.channels)

    @property
    def observing(self) -> bool:
        """Observe (shadow) mode: decisions are recorded, never carried out."""
        return self.action == ProtectedGroup.Action.OBSERVE

    @property
    def required(self) -> int:
        """How many linked channels a member must be subscribed to (the policy)."""
        return required_channels(self.policy, len(self.channels))

    @property
    def fail_open(self) -> bool:
        return self.fail_mode == ProtectedGroup.FailMode.OPEN

    def channel(self, chat_id: int) -> ChannelConfig | None:
        return next((c for c in self.channels if c.chat_id == chat_id), None)


def load_group_config(bot_id: int, chat_id: int) -> GroupConfig | None:
    """Read one group's configuration from the database (three queries)."""
    group = ProtectedGroup.objects.filter(bot_id=bot_id, chat_id=chat_id).first()
    if group is None:
        return None
    return _build(group)


def load_bot_configs(bot_id: int) -> dict[int, GroupConfig]:
    """Every group of a bot, by chat id, in three queries however many groups there
    are (groups, their channel links, their admins): the start-up bulk load."""
    groups = list(ProtectedGroup.objects.filter(bot_id=bot_id))
    channels: dict[int, list[ChannelConfig]] = {g.pk: [] for g in groups}
    links = (GroupChannel.objects.filter(group__bot_id=bot_id).select_related("channel")
             .order_by("pk"))
    for link in links:
        channels.setdefault(link.group_id, []).append(_channel(link))
    admins: dict[int, set[int]] = {g.pk: set() for g in groups}
    rows = GroupAdmin.objects.filter(group__bot_id=bot_id).values_list("group_id", "user_id")
    for group_pk, user_id in rows:
        admins.setdefault(group_pk, set()).add(user_id)
    return {g.chat_id: _build(g, tuple(channels[g.pk]), frozenset(admins[g.pk]))
            for g in groups}


def _channel(link: GroupChannel) -> ChannelConfig:
    return ChannelConfig(
        pk=link.channel.pk,
        chat_id=link.channel.chat_id,
        title=link.channel.title,
        username=link.channel.username,
        # The group's own invite link when it has one: joins through it are attributed.
        join_url=link.invite_link or link.channel.join_url,
        channel_url=link.channel.join_url,
    )


def _build(group: ProtectedGroup, channels: tuple[ChannelConfig, ...] | None = None,
           admin_ids: frozenset[int] | None = None) -> GroupConfig:
    if channels is None:
        links = GroupChannel.objects.filter(group=group).select_related("channel").order_by("pk")
        channels = tuple(_channel(link) for link in links)
    if admin_ids is None:
        admin_ids = frozenset(GroupAdmin.objects.filter(group=group)
                              .values_list("user_id", flat=True))
    raw_allowed = group.allowed_user_ids or []
    allowed = frozenset(int(u) for u in raw_allowed if str(u).lstrip("-").isdigit())
    return GroupConfig(
        pk=group.pk,
        bot_id=group.bot_id,
        chat_id=group.chat_id,
        title=group.title,
        enabled=group.enabled,
        is_forum=group.is_forum,
        action=group.action,
        fail_mode=group.fail_mode,
        warning_delete_after=group.warning_delete_after,
        join_request_timeout=group.join_request_timeout,
        warning_text=group.warning_text,
        channels=channels,
        admin_ids=admin_ids,
        allowed_user_ids=allowed,
        admins_refreshed_at=group.admins_refreshed_at.timestamp()
        if group.admins_refreshed_at
        else None,
        linked_chat_id=group.linked_chat_id,
        policy=group.policy,
        captcha=group.captcha,
        captcha_timeout=group.captcha_timeout,
        throttle=group.throttle,
        language=group.language,
        members_language=group.members_language,
        warning_texts=tuple(sorted((str(code), str(text))
                                   for code, text in (group.warning_texts or {}).items()
                                   if text)),
    )


def load_groups_for_channel(bot_id: int, channel_chat_id: int) -> tuple[int, ...]:
    """Chat ids of the groups (of this bot) that require this channel."""
    return tuple(
        GroupChannel.objects.filter(
            group__bot_id=bot_id, channel__chat_id=channel_chat_id
        ).values_list("group__chat_id", flat=True)
    )


class ConfigCache:
    """Process-local cache of GroupConfig, kept coherent by a shared version."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._groups: dict[tuple[int, int], GroupConfig | None] = {}
        self._channels: dict[tuple[int, int], tuple[int, ...]] = {}
        self._version: int | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def peek(self, bot_id: int, chat_id: int) -> tuple[bool, GroupConfig | None]:
        """`(known, config)` from memory only: never touches the database.

        Fresh within `VERSION_CHECK_SECONDS` of a change while `watch()` runs.
        """
        key = (bot_id, chat_id)
        if key in self._groups:
            return True, self._groups[key]
        return False, None

    def get(self, bot_id: int, chat_id: int) -> GroupConfig | None:
        known, config = self.peek(bot_id, chat_id)
        if known:
            return config
        config = load_group_config(bot_id, chat_id)
        self._groups[(bot_id, chat_id)] = config
        return config

    def preload(self, bot_id: int) -> int:
        """Load every group of a bot at once (start-up), instead of one by one as
        their first messages arrive; returns how many. Chats already loaded (or known
        to be unprotected) stay as they are."""
        self._check_version()
        loaded = load_bot_configs(bot_id)
        with self._lock:
            for chat_id, config in loaded.items():
                self._groups.setdefault((bot_id, chat_id), config)
        return len(loaded)

    def groups_for_channel(self, bot_id: int, channel_chat_id: int) -> tuple[int, ...]:
        self._check_version()
        key = (bot_id, channel_chat_id)
        if key not in self._channels:
            self._channels[key] = load_groups_for_channel(bot_id, channel_chat_id)
        return self._channels[key]

    def drop(self, bot_id: int, chat_id: int) -> None:
        """Forget one group here (a change only this process needs to see)."""
        with self._lock:
            self._groups.pop((bot_id, chat_id), None)

    def clear(self) -> None:
        with self._lock:
            self._groups.clear()
            self._channels.clear()

    def _check_version(self) -> None:
        """Compare with the database's version (sync code only: it may query)."""
        now = self.clock()
        if now - self._checked_at < VERSION_CHECK_SECONDS:
            return
        self._checked_at = now
        version = shared_version()
        if version is None:
            self._checked_at = now + VERSION_RETRY_SECONDS - VERSION_CHECK_SECONDS
            return
        if version != self._version:
            # Someone changed a group (maybe in another process): reload lazily.
            self._version = version
            self.clear()

    def force_check(self) -> None:
        """Compare with the shared version now (tests, and after a local change)."""
        self._checked_at = 0.0
        self._check_version()

    async def watch(self, stop: asyncio.Event) -> None:
        """A runtime service: check the version on a timer until `stop` is set."""
        check = sync_to_async(self._check_version)
        while not stop.is_set():
            await check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=VERSION_CHECK_SECONDS)


def shared_version() -> int | None:
    """The database's configuration version; None while the database is unreachable."""
    try:
        if not connection.in_atomic_block:
            close_old_connections()  # runbot has no requests to recycle connections
        version = ConfigVersion.objects.filter(pk=1).values_list("version", flat=True).first()
        if version is None:
            version = ConfigVersion.objects.get_or_create(pk=1)[0].version
        return version
    except DatabaseError as exc:
        # Enforcement goes on with what is cached; the next check tries again.
        logger.warning("config.version_unavailable", error=str(exc).strip()[:200])
        return None


def bump_version() -> None:
    """Tell every process that group configuration changed."""
    configs.clear()
    try:
        if not ConfigVersion.objects.filter(pk=1).update(version=F("version") + 1):
            ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 1})
    except DatabaseError as exc:
        logger.warning("config.version_bump_failed", error=str(exc).strip()[:200])


configs = ConfigCache()
_aget = sync_to_async(configs.get)
# (loop, bot, chat) -> the load under way: a raid's first joins share one load.
_loading: dict[tuple[int, int, int], asyncio.Future[GroupConfig | None]] = {}


async def aget_group_config(bot_id: int, chat_id: int) -> GroupConfig | None:
    """`configs.get` from async code; concurrent loads of one chat share one query
    (and resume in the order they asked, so a raid is handled in arrival order)."""
    known, config = configs.peek(bot_id, chat_id)
    if known:
        return config
    loop = asyncio.get_running_loop()
    key = (id(loop), bot_id, chat_id)
    pending = _loading.get(key)
    if pending is None or pending.get_loop() is not loop:
        pending = asyncio.ensure_future(_aget(bot_id, chat_id))
        _loading[key] = pending
        pending.add_done_callback(lambda done: _loading.pop(key, None)
                                  if _loading.get(key) is done else None)
    return await asyncio.shield(pending)


apreload = sync_to_async(configs.preload)
agroups_for_channel = sync_to_async(configs.groups_for_channel)
