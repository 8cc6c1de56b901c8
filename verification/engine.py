"""One bot's enforcement state: what must outlive a single update.

An `Engine` per bot holds the warning board, who this process restricted,
throttles, cached default permissions, admin-refresh bookkeeping, when each
chat was last active, and the background tasks (warning edits and expiry).
It is state, not behaviour: it calls neither Telegram nor the flows, and
nothing in it points back at the code that uses it. Facts are gathered by
`verification.telegram_reads`, rules are `verification.decisions`, effects
are `verification.actions`, and what happened is written down by
`verification.recording`.

Membership answers and events are process-wide (`membership.memberships`,
`recorder.recorder`); the engine only names which ones this bot uses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Coroutine
from typing import Any

import structlog
from telegram import Bot, ChatPermissions

from bots.people import PeopleWriter
from groups import languages
from groups.config import ChannelConfig, GroupConfig, aget_group_config, configs
from groups.services.ledger_writes import MemberSightings, sightings
from verification.membership import MembershipCache, memberships
from verification.recorder import EventRecorder, recorder
from verification.warnings import WarningBoard

logger = structlog.get_logger(__name__)

JOIN_DEDUPE_SECONDS = 60.0  # chat_member and new_chat_members for one join arrive both
PRESS_INTERVAL = 3.0  # "I've joined" presses per user are at most this frequent
# Members noted once per process; past this many the set starts again (a second
# note of a member is one idempotent write, so forgetting costs little).
KNOWN_MEMBERS_MAX = 500_000


@dataclasses.dataclass(eq=False)
class Engine:
    bot_pk: int  # BotInstance pk: the key of group configuration
    bot_telegram_id: int  # the key of membership answers
    bot: Bot
    memberships: MembershipCache = memberships
    recorder: EventRecorder = recorder
    sightings: MemberSightings = sightings
    # The people directory's writer (bots.people); the runtime gives every bot its one.
    people: PeopleWriter = dataclasses.field(default_factory=PeopleWriter)
    board: WarningBoard = dataclasses.field(default_factory=WarningBoard)
    # (chat, user) this process restricted; the ledger is the truth, this covers
    # the moment before its row is written (decisions.restriction_is_ours).
    restricted: set[tuple[int, int]] = dataclasses.field(default_factory=set)
    # chat -> (default permissions, expiry): telegram_reads.default_permissions.
    permissions: dict[int, tuple[ChatPermissions, float]] = dataclasses.field(default_factory=dict)
    sender_chat_notices: dict[int, float] = dataclasses.field(default_factory=dict)
    tasks: set[asyncio.Task] = dataclasses.field(default_factory=set)
    timers: set[asyncio.Task] = dataclasses.field(default_factory=set)
    # chat -> when its admin list was last asked for; chat -> the fetch under way.
    admin_refreshed: dict[int, float] = dataclasses.field(default_factory=dict)
    admin_fetches: dict[int, asyncio.Future[bool]] = dataclasses.field(default_factory=dict)
    # (chat, user) -> the newcomer's open human check (verification.captcha.Pending).
    captchas: dict[tuple[int, int], Any] = dataclasses.field(default_factory=dict)
    _recent_joins: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)
    _presses: dict[int, float] = dataclasses.field(default_factory=dict)
    _known: set[tuple[int, int]] = dataclasses.field(default_factory=set)
    # chat -> when a member was last checked there (the check-up skips idle groups).
    active: dict[int, float] = dataclasses.field(default_factory=dict)
    # Set when a broadcast of this bot was confirmed: its sender starts at once
    # instead of at its next look (verification.broadcasts.run).
    broadcasts_due: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # The languages of the members seen speaking: what a group's `auto` language is.
    member_languages: languages.Tally = dataclasses.field(default_factory=languages.Tally)

    # --- configuration ----------------------------------------------------------

    async def config(self, chat_id: int) -> GroupConfig | None:
        """From memory when known (the hot path), else one load."""
        known, config = configs.peek(self.bot_pk, chat_id)
        if known:
            return config
        return await aget_group_config(self.bot_pk, chat_id)

    # --- languages --------------------------------------------------------------

    def group_language(self, config: GroupConfig | None) -> str:
        """The language of a message to a whole group: its setting, or under `auto` the
        most common among its members (seen lately, else as last written down)."""
        if config is None:
            return languages.DEFAULT
        most_common = self.member_languages.most_common(config.chat_id) or config.members_language
        return languages.for_group(config.language, most_common)

    def language_of(self, config: GroupConfig | None, tag: str | None) -> str:
        """The language of a message to one person: their app's (`tag`), else the group's."""
        return languages.supported(tag) or self.group_language(config)

    # --- membership -------------------------------------------------------------

    def peek(self, user_id: int, channels: tuple[ChannelConfig, ...], *,
             partial: bool = False) -> dict[int, bool] | None:
        """Answers for every channel from process memory, or None if any is unknown.

        `partial` (groups whose policy is `any` or `at least N`): whatever memory
        knows, since a few known subscriptions may already decide
        (`decisions.known_enough`); None only when it knows nothing.
        """
        answers = {}
        for channel in channels:
            value = self.memberships.peek((self.bot_telegram_id, channel.chat_id, user_id))
            if value is None:
                if partial:
                    continue
                return None
            answers[channel.chat_id] = value
        return answers if answers or not channels else None

    # --- bookkeeping ------------------------------------------------------------

    def first_sighting(self, chat_id: int, user_id: int) -> bool:
        """True the first time this process sees a member in a chat (then
        `recording.seen` notes them: a channel leave must know where they are)."""
        key = (chat_id, user_id)
        if key in self._known:
            return False
        if len(self._known) >= KNOWN_MEMBERS_MAX:
            self._known.clear()
        self._known.add(key)
        return True

    def note_activity(self, chat_id: int) -> None:
        self.active[chat_id] = time.monotonic()

    def active_since(self, chat_id: int, seconds: float) -> bool:
        """Whether a member was checked in this chat within the last `seconds`."""
        return time.monotonic() - self.active.get(chat_id, -1e18) <= seconds

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
        """The press throttle: True at most once per `PRESS_INTERVAL` per user (who may
        press at all is `decisions.may_press`)."""
        now = time.monotonic()
        if len(self._presses) > 10_000:
            self._presses = {u: t for u, t in self._presses.items() if now - t < PRESS_INTERVAL}
        if now - self._presses.get(user_id, 0.0) < PRESS_INTERVAL:
            return False
        self._presses[user_id] = now
        return True

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

    async def idle(self) -> None:
        """Wait until no background task but timers is running and the members and
        people seen are written (tests, and shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        await self.sightings.aflush()
        if self.people.pending:
            await self.people.aflush()

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
