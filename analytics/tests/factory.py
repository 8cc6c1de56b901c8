"""Plain factories for tests: fill defaults with setdefault, return saved rows."""

from __future__ import annotations

import itertools
from typing import Any

from bots.models import BotInstance
from groups.models import EnforcedChannel, GroupChannel, ProtectedGroup
from verification.events import VerificationEventData

_ids = itertools.count(1)


def make_bot(**fields: Any) -> BotInstance:
    n = next(_ids)
    token = fields.pop("token", f"{700000 + n}:AAH{'x' * 32}{n:03d}")
    fields.setdefault("username", f"bot{n}_bot")
    bot = BotInstance(**fields)
    bot.set_token(token)
    bot.save()
    return bot


def make_group(*, bot: BotInstance | None = None, channels: list[EnforcedChannel] = (),
               **fields: Any) -> ProtectedGroup:
    n = next(_ids)
    fields.setdefault("chat_id", -1001000000000 - n)
    fields.setdefault("title", f"Group {n}")
    group = ProtectedGroup.objects.create(bot=bot or make_bot(), **fields)
    for channel in channels:
        GroupChannel.objects.create(group=group, channel=channel)
    return group


def make_channel(*, bot: BotInstance, **fields: Any) -> EnforcedChannel:
    n = next(_ids)
    fields.setdefault("chat_id", -1002000000000 - n)
    fields.setdefault("title", f"Channel {n}")
    fields.setdefault("username", f"channel{n}")
    return EnforcedChannel.objects.create(bot=bot, **fields)


def event(group: ProtectedGroup | None, outcome: str = "restricted", **fields: Any
          ) -> VerificationEventData:
    fields.setdefault("bot_id", group.bot_id if group else None)
    fields.setdefault("chat_id", group.chat_id if group else -1)
    fields.setdefault("user_id", 500 + next(_ids))
    return VerificationEventData(
        outcome=outcome, group_id=group.pk if group else None, **fields
    )
