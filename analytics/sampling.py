"""The user-growth series: each protected group's members and each required
channel's subscribers, counted once a day (`analytics.models.SizeSample`).

A runtime bot task (`sample_daily`): one getChatMemberCount per chat and day at
P2, the lowest priority, so it only ever uses what enforcement leaves free.
Chats counted today already (a restart, another runbot that ran the bot
earlier) are skipped, so a day has one sample per chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime

import structlog
from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.utils import timezone
from telegram.error import TelegramError

from analytics.models import SizeSample
from groups.models import GroupChannel, ProtectedGroup
from verification.engine import Engine
from verification.priorities import call_at

logger = structlog.get_logger(__name__)

# Look for chats still to count this often; each is counted once per day (UTC).
CHECK_INTERVAL = 3600.0
# The first pass waits: start-up has enough to do.
START_DELAY = 120.0


def chats_to_sample(bot_pk: int, day: datetime.date) -> list[tuple[int, str]]:
    """`(chat id, kind)` of this bot's enabled groups and their channels not counted on `day`."""
    groups = ProtectedGroup.objects.filter(bot_id=bot_pk, enabled=True)
    chats = [(chat_id, SizeSample.Kind.GROUP) for chat_id in
             groups.values_list("chat_id", flat=True)]
    chats += [(chat_id, SizeSample.Kind.CHANNEL) for chat_id in
              GroupChannel.objects.filter(group__in=groups)
              .values_list("channel__chat_id", flat=True).distinct()]
    done = set(SizeSample.objects.filter(bot_id=bot_pk, day=day)
               .values_list("chat_id", flat=True))
    return [(chat_id, kind) for chat_id, kind in dict(chats).items() if chat_id not in done]


def store_sample(bot_pk: int, chat_id: int, kind: str, day: datetime.date, count: int) -> None:
    SizeSample.objects.update_or_create(bot_id=bot_pk, chat_id=chat_id, day=day,
                                        defaults={"kind": kind, "count": count})


achats_to_sample = sync_to_async(chats_to_sample)
astore_sample = sync_to_async(store_sample)


async def sample_once(engine: Engine, day: datetime.date | None = None) -> int:
    """Count every chat not counted today; returns how many were counted."""
    day = day or timezone.now().date()
    counted = 0
    for chat_id, kind in await achats_to_sample(engine.bot_pk, day):
        try:
            with call_at("P2"):
                count = await engine.bot.get_chat_member_count(chat_id)
        except TelegramError as exc:
            # The bot left, or lost its rights: /doctor says so; try again next pass.
            logger.info("sampling.count_failed", chat_id=chat_id, error=str(exc))
            continue
        await astore_sample(engine.bot_pk, chat_id, kind, day, count)
        counted += 1
    return counted


async def sample_daily(engine: Engine, stop: asyncio.Event) -> None:
    """A runtime bot task: `sample_once` every `CHECK_INTERVAL` until `stop`."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=START_DELAY)
    while not stop.is_set():
        try:
            await sample_once(engine)
        except DatabaseError as exc:
            logger.warning("sampling.database_away", bot=engine.bot_pk, error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=CHECK_INTERVAL)
