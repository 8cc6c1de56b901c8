"""The runbot harness: a real `manage.py runbot --no-web` against the emulator, and the counts.

A `FaultWorld` is the production shape on a test's own servers: the Bot API
emulator in the test's event loop (flood limits on), a throw-away PostgreSQL
cluster with the usual scene seeded (the bot admin in group "Cats" and
channel "Cat News", Cats protected by Cat News), a throw-away redis-server,
and runbot as a child process the test may SIGKILL and start again.

The counts a fault test prints and asserts come from what Telegram (the
emulator) saw and what the database holds:

* unrestricted: non-subscribers of a raid who are not muted (or kicked);
* doubled: people muted twice, i.e. two successful mutes with no unmute between;
* ledger_missing: muted people with no `restricted_by_nezuko` GroupMember row;
* events_lost: muted people with no "restricted" VerificationEvent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from bots.emulator import TelegramEmulator
from bots.emulator.scene import Scene
from bots.emulator.state import User
from bots.models import BotInstance
from bots.tests.runtime_support import Child, child_env
from groups.models import (
    EnforcedChannel,
    GroupAdmin,
    GroupChannel,
    GroupMember,
    ProtectedGroup,
)
from tests.faults.servers import PostgresCluster, RedisServer
from verification.models import Outcome, VerificationEvent

RUNBOT_READY_SECONDS = 90.0  # Django start-up on a shared 2-core machine, not a speed claim
# Housekeeping calls that go on while nothing is being enforced.
IDLE_METHODS = frozenset({"getUpdates", "getMe", "deleteWebhook"})


def register_database(alias: str, url: str) -> None:
    """Make the cluster reachable from this process's ORM as `alias` (`.using(alias)`)."""
    import environ

    config = environ.Env.db_url_config(url)
    base = dict(connections["default"].settings_dict)
    base.update(config)
    base.update({"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False, "OPTIONS": {}, "TEST": {}})
    connections.settings[alias] = base


def forget_database(alias: str) -> None:
    with contextlib.suppress(Exception):
        connections[alias].close()
    connections.settings.pop(alias, None)
    with contextlib.suppress(AttributeError, KeyError):
        delattr(connections._connections, alias)


class Runbot:
    """`manage.py runbot --no-web` as a child process; every start's output is kept."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.child: Child | None = None
        self.outputs: list[list[str]] = []
        self.starts = 0

    async def start(self) -> None:
        self.child = await Child.start("runbot", "--no-web", env=self.env)
        self.outputs.append(self.child.output)
        self.starts += 1
        await self.child.wait_for_output("bot.running", within=RUNBOT_READY_SECONDS)

    async def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.child is not None
        return await self.child.stop(sig)

    async def close(self) -> None:
        if self.child is not None and self.child.process.returncode is None:
            await self.child.stop(signal.SIGKILL)

    def log(self) -> str:
        return "".join("".join(lines) for lines in self.outputs)


@dataclasses.dataclass
class Raid:
    subscribers: list[User]
    strangers: list[User]  # the non-subscribers: each must end up muted (or kicked)

    @property
    def people(self) -> list[User]:
        return self.subscribers + self.strangers


class FaultWorld:
    """Emulator + cluster + redis-server + runbot, and the counts of what happened."""

    def __init__(self, emulator: TelegramEmulator, scene: Scene, cluster: PostgresCluster,
                 redis: RedisServer, alias: str) -> None:
        self.emulator = emulator
        self.scene = scene
        self.cluster = cluster
        self.redis = redis
        self.alias = alias
        self.group_pk = 0
        self.extra_runbots: list[Runbot] = []
        self.runbot = Runbot(child_env(
            DATABASE_URL=cluster.url(),
            REDIS_URL=redis.url(),
            TELEGRAM_API_URL=emulator.api_url,
            BOT_TOKEN="",
            WEBHOOK_URL="",
            DEBUG="true",
            LOG_LEVEL="INFO",
        ))

    # --- the scene in the database ---------------------------------------------------

    def seed(self) -> None:
        """The bot's row and Cats protected by Cat News, as /protect would leave them."""
        db, scene = self.alias, self.scene
        bot = BotInstance(username=scene.bot.username or "")
        bot.set_token(scene.bot.token or "")
        bot.save(using=db)
        channel = EnforcedChannel.objects.using(db).create(
            bot=bot, chat_id=scene.channel.id, title="Cat News", username="catnews"
        )
        group = ProtectedGroup.objects.using(db).create(bot=bot, chat_id=scene.group.id,
                                                       title="Cats")
        GroupChannel.objects.using(db).create(group=group, channel=channel)
        for admin in (scene.alice, scene.bot):
            GroupAdmin.objects.using(db).create(group=group, user_id=admin.id,
                                                is_creator=admin is scene.alice)
        ProtectedGroup.objects.using(db).filter(pk=group.pk).update(
            admins_refreshed_at=timezone.now()
        )
        self.group_pk = group.pk

    def add_bot(self, username: str) -> BotInstance:
        """Another bot in the database and the emulator, with no groups."""
        bot_user = self.emulator.create_bot(username=username)
        bot = BotInstance(username=username)
        bot.set_token(bot_user.token or "")
        bot.save(using=self.alias)
        return bot

    def add_group(self, title: str) -> Any:
        """Another group of the scene's bot, protected by Cat News as Cats is."""
        emu, scene, db = self.emulator, self.scene, self.alias
        chat = emu.create_supergroup(title, creator=scene.alice)
        emu.promote(chat, scene.bot, by=scene.alice)
        group = ProtectedGroup.objects.using(db).create(bot_id=self.bot_pk(), chat_id=chat.id,
                                                       title=title)
        channel = EnforcedChannel.objects.using(db).get(chat_id=scene.channel.id)
        GroupChannel.objects.using(db).create(group=group, channel=channel)
        for admin in (scene.alice, scene.bot):
            GroupAdmin.objects.using(db).create(group=group, user_id=admin.id,
                                                is_creator=admin is scene.alice)
        ProtectedGroup.objects.using(db).filter(pk=group.pk).update(
            admins_refreshed_at=timezone.now()
        )
        return chat

    def bot_pk(self) -> int:
        return ProtectedGroup.objects.using(self.alias).get(pk=self.group_pk).bot_id

    def runbots(self, count: int, **env: str) -> list[Runbot]:
        """`count` more runbot processes on this world's servers (not started)."""
        runbots = [Runbot({**self.runbot.env, **env}) for _ in range(count)]
        self.extra_runbots.extend(runbots)
        return runbots

    # --- traffic ----------------------------------------------------------------------

    def raid(self, count: int, subscribed_share: float = 0.2, *, name: str = "Raider") -> Raid:
        """`count` strangers join Cats at once; the first `subscribed_share` follow Cat News."""
        emu, scene = self.emulator, self.scene
        people = [emu.create_user(f"{name} {i}") for i in range(count)]
        subscribed = round(count * subscribed_share)
        for person in people[:subscribed]:
            emu.join(scene.channel, person)
        for person in people:
            emu.join(scene.group, person)
        return Raid(people[:subscribed], people[subscribed:])

    async def storm(self, method: str, seconds: float, retry_after: int) -> None:
        """Telegram answers 429 (`retry_after`) to every `method` call for `seconds`."""
        fault = self.emulator.fail(method, error_code=429, retry_after=retry_after, times=None)
        try:
            # The storm's length is the scenario itself, not a wait for an event.
            await asyncio.sleep(seconds)
        finally:
            self.emulator.faults[fault.method].remove(fault)

    # --- what Telegram saw --------------------------------------------------------------

    def status(self, person: User) -> str:
        return self.emulator.member(self.scene.group, person)["status"]

    def is_muted(self, person: User) -> bool:
        # Lifting a restriction leaves Telegram's status "restricted" with every right back.
        member = self.emulator.member(self.scene.group, person)
        return member["status"] == "restricted" and not member.get("can_send_messages", True)

    def muted(self, people: Iterable[User]) -> list[User]:
        return [p for p in people if self.is_muted(p)]

    def unrestricted(self, people: Iterable[User]) -> list[User]:
        """Of `people` (non-subscribers), those neither muted nor removed."""
        return [p for p in people
                if not self.is_muted(p) and self.status(p) not in ("kicked", "left")]

    def doubled(self) -> list[int]:
        """User ids muted twice in Cats: two successful mutes without an unmute between."""
        muted_now: set[int] = set()
        doubled: set[int] = set()
        for call in self.emulator.calls_named("restrictChatMember", chat_id=self.scene.group.id):
            if not call.ok:
                continue
            user_id = int(call.params["user_id"])
            if any((call.params.get("permissions") or {}).values()):
                muted_now.discard(user_id)
            elif user_id in muted_now:
                doubled.add(user_id)
            else:
                muted_now.add(user_id)
        return sorted(doubled)

    def activity(self) -> int:
        """Bot API calls so far that were not housekeeping: unchanged while runbot is idle.

        Part of a `settle` measure, so a raid still in its lookups (no new
        restriction for seconds) does not read as "no progress".
        """
        return sum(1 for call in self.emulator.calls if call.method not in IDLE_METHODS)

    # --- what the database holds ------------------------------------------------------

    def _ledger_and_events(self, user_ids: Sequence[int]) -> tuple[set[int], set[int]]:
        connections[self.alias].close()  # the cluster may have restarted since the last read
        ledger = set(GroupMember.objects.using(self.alias).filter(
            group_id=self.group_pk, user_id__in=user_ids, restricted_by_nezuko=True,
        ).values_list("user_id", flat=True))
        events = set(VerificationEvent.objects.using(self.alias).filter(
            group_id=self.group_pk, user_id__in=user_ids, outcome=Outcome.RESTRICTED,
        ).values_list("user_id", flat=True))
        if os.environ.get("NEZUKO_FAULTS_DEBUG"):
            missing = set(user_ids) - ledger
            for row in GroupMember.objects.using(self.alias).filter(
                    group_id=self.group_pk, user_id__in=missing).values():
                print("MISSING", row)
            print("NO ROW", missing - set(GroupMember.objects.using(self.alias).filter(
                group_id=self.group_pk, user_id__in=missing).values_list("user_id", flat=True)))
        connections[self.alias].close()
        return ledger, events

    async def missing_rows(self, muted: Sequence[User]) -> tuple[int, int]:
        """`(ledger rows missing, events lost)` for these muted people."""
        ids = [p.id for p in muted]
        ledger, events = await sync_to_async(self._ledger_and_events)(ids)
        return len(set(ids) - ledger), len(set(ids) - events)

    async def close(self) -> None:
        await self.runbot.close()
        for extra in self.extra_runbots:
            await extra.close()


async def settle(measure: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], *,
                 quiet: float, within: float) -> tuple[Any, float]:
    """Await `done(measure())`, or give up once the measure stopped changing.

    Returns `(last measure, seconds waited)`. Fixed code reaches `done` and
    returns at once; broken code returns after `quiet` seconds without progress
    (bounded by `within`), so a red run costs seconds, not minutes.
    """
    started = changed_at = time.monotonic()
    value = await measure()
    while not done(value):
        now = time.monotonic()
        if now - changed_at >= quiet or now - started >= within:
            break
        # Polling: the condition lives in another process and the emulator's state.
        await asyncio.sleep(0.25)
        latest = await measure()
        if latest != value:
            value, changed_at = latest, time.monotonic()
    return value, time.monotonic() - started


def figures(**numbers: Any) -> str:
    """The line every fault test prints: `lost=… doubled=… owed=… recovered_in=…`."""
    parts = []
    for name, value in numbers.items():
        parts.append(f"{name}={value:.1f}s" if isinstance(value, float) else f"{name}={value}")
    return " ".join(parts)
