"""One bot's enforcement state and the facts its handlers gather.

An `Engine` per bot holds what must outlive one update: the warning board,
who this process restricted, throttles, cached default permissions and the
background tasks (warning edits and expiry). Membership answers and events
are process-wide (`membership.memberships`, `recorder.recorder`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Coroutine
from typing import Any

import structlog
from telegram import Bot, ChatPermissions

from groups.config import ChannelConfig, GroupConfig, aget_group_config, configs
from groups.services import ledger_writes
from verification import actions
from verification.events import VerificationEventData
from verification.membership import Lookup, MembershipCache, memberships
from verification.recorder import EventRecorder, recorder
from verification.updates import Person
from verification.warnings import WarningBoard

logger = structlog.get_logger(__name__)

ADMIN_REFRESH_SECONDS = 600.0  # the admin list is refreshed this often, never per message
JOIN_DEDUPE_SECONDS = 60.0  # chat_member and new_chat_members for one join arrive both
PRESS_INTERVAL = 3.0  # "I've joined" presses per user are at most this frequent
KNOWN_MEMBERS_MAX = 500_000


@dataclasses.dataclass(eq=False)
class Engine:
    bot_pk: int  # BotInstance pk: the key of group configuration
    bot_telegram_id: int  # the key of membership answers
    bot: Bot
    memberships: MembershipCache = memberships
    recorder: EventRecorder = recorder
    board: WarningBoard = dataclasses.field(default_factory=WarningBoard)
    restricted: set[tuple[int, int]] = dataclasses.field(default_factory=set)
    permissions: dict[int, tuple[ChatPermissions, float]] = dataclasses.field(default_factory=dict)
    sender_chat_notices: dict[int, float] = dataclasses.field(default_factory=dict)
    tasks: set[asyncio.Task] = dataclasses.field(default_factory=set)
    timers: set[asyncio.Task] = dataclasses.field(default_factory=set)
    _recent_joins: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)
    _presses: dict[int, float] = dataclasses.field(default_factory=dict)
    _known: set[tuple[int, int]] = dataclasses.field(default_factory=set)
    _admin_refresh: dict[int, float] = dataclasses.field(default_factory=dict)
    _admin_fetches: dict[int, asyncio.Future[bool]] = dataclasses.field(default_factory=dict)
    handlers: Any = None  # verification.handlers.Handlers, set by install()
    commands: Any = None  # verification.commands.Commands, set by install()

    # --- configuration ----------------------------------------------------------

    async def config(self, chat_id: int) -> GroupConfig | None:
        """From memory when known (the hot path), else one load."""
        known, config = configs.peek(self.bot_pk, chat_id)
        if known:
            return config
        return await aget_group_config(self.bot_pk, chat_id)

    # --- membership -------------------------------------------------------------

    def peek(self, user_id: int, channels: tuple[ChannelConfig, ...]) -> dict[int, bool] | None:
        """Answers for every channel from process memory, or None if any is unknown."""
        answers = {}
        for channel in channels:
            value = self.memberships.peek((self.bot_telegram_id, channel.chat_id, user_id))
            if value is None:
                return None
            answers[channel.chat_id] = value
        return answers

    async def check(self, user_id: int, channels: tuple[ChannelConfig, ...], *,
                    fresh: tuple[int, ...] = (),
                    level: str = "P1") -> tuple[dict[int, bool | None], bool]:
        """`(answers, all_cached)`; channels in `fresh` are asked again at `level`."""
        async def one(channel: ChannelConfig) -> Lookup:
            key = (self.bot_telegram_id, channel.chat_id, user_id)

            async def fetch() -> bool:
                return await actions.fetch_membership(self, channel.chat_id, user_id, level)

            return await self.memberships.lookup(key, fetch, fresh=channel.chat_id in fresh)

        lookups = await asyncio.gather(*(one(c) for c in channels))
        answers = {c.chat_id: r.is_member for c, r in zip(channels, lookups, strict=True)}
        return answers, all(r.cache_hit for r in lookups)

    # --- bookkeeping ------------------------------------------------------------

    def seen(self, config: GroupConfig, person: Person) -> None:
        """Remember a member once per process (channel-leave needs to know them)."""
        key = (config.chat_id, person.id)
        if key in self._known:
            return
        if len(self._known) >= KNOWN_MEMBERS_MAX:
            self._known.clear()
        self._known.add(key)
        self.spawn(ledger_writes.anote_member(config.pk, person.id, name=person.name,
                                         username=person.username))

    def first_join(self, chat_id: int, user_id: int) -> bool:
        """True once per join, whether chat_member or new_chat_members came first."""
        now = time.monotonic()
        if len(self._recent_joins) > 10_000:
            self._recent_joins = {k: t for k, t in self._recent_joins.items()
                                  if now - t < JOIN_DEDUPE_SECONDS}
        last = self._recent_joins.get((chat_id, user_id))
        if last is not None and now - last < JOIN_DEDUPE_SECONDS:
            return False
        self._recent_joins[(chat_id, user_id)] = now
        return True

    def forget_join(self, chat_id: int, user_id: int) -> None:
        """They left: a rejoin within the dedupe window is a new join."""
        self._recent_joins.pop((chat_id, user_id), None)

    def may_press(self, user_id: int) -> bool:
        now = time.monotonic()
        if len(self._presses) > 10_000:
            self._presses = {u: t for u, t in self._presses.items() if now - t < PRESS_INTERVAL}
        if now - self._presses.get(user_id, 0.0) < PRESS_INTERVAL:
            return False
        self._presses[user_id] = now
        return True

    def admins_stale(self, config: GroupConfig) -> bool:
        refreshed = config.admins_refreshed_at
        return refreshed is None or time.time() - refreshed > ADMIN_REFRESH_SECONDS

    def refresh_admins_soon(self, config: GroupConfig, *, force: bool = False) -> None:
        """Refresh the admin list in the background, at most once a minute per chat."""
        now = time.monotonic()
        if not force and now - self._admin_refresh.get(config.chat_id, -1e9) < 60:
            return
        self._admin_refresh[config.chat_id] = now
        self.spawn(actions.fetch_admins(self, config))

    async def ensure_admins(self, config: GroupConfig) -> GroupConfig:
        """Before restricting anyone, make sure the admin list is not missing or stale.

        Concurrent callers for one chat (a raid) share one getChatAdministrators.
        """
        if not self.admins_stale(config):
            return config
        pending = self._admin_fetches.get(config.chat_id)
        if pending is None:
            self._admin_refresh[config.chat_id] = time.monotonic()
            pending = asyncio.ensure_future(actions.fetch_admins(self, config))
            self._admin_fetches[config.chat_id] = pending
            pending.add_done_callback(lambda _: self._admin_fetches.pop(config.chat_id, None))
        if await asyncio.shield(pending):
            return await aget_group_config(self.bot_pk, config.chat_id) or config
        return config

    def record(self, outcome: str, config: GroupConfig, person: Person, *,
               missing: tuple[ChannelConfig, ...] = (), started: float | None = None,
               cache_hit: bool | None = None, detail: str = "") -> None:
        self.recorder.record(VerificationEventData(
            outcome=str(outcome),
            bot_id=self.bot_pk,
            group_id=config.pk,
            chat_id=config.chat_id,
            user_id=person.id,
            user_name=person.name,
            missing_channel_ids=tuple(c.chat_id for c in missing),
            latency_ms=(time.perf_counter() - started) * 1000 if started else None,
            cache_hit=cache_hit,
            detail=detail,
        ))

    # --- background work ----------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], *, timer: bool = False) -> asyncio.Task:
        """Run work beside the update; `timer` marks long waits `idle()` does not await."""
        task = asyncio.get_running_loop().create_task(coro)
        (self.timers if timer else self.tasks).add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        self.timers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("engine.task_failed", exc_info=task.exception())

    def delete_later(self, chat_id: int, message_id: int, delay: float) -> None:
        async def later() -> None:
            await asyncio.sleep(delay)
            await actions.delete_message(self, chat_id, message_id)

        self.spawn(later(), timer=True)

    async def idle(self) -> None:
        """Wait until no background task but timers is running (tests, and shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        """Finish short work, cancel timers (their warnings stay; Telegram keeps them)."""
        try:
            await asyncio.wait_for(self.idle(), timeout=10)
        except TimeoutError:
            pass
        pending = list(self.tasks | self.timers)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
