"""Plain factories for tests: fill defaults with setdefault, return saved rows."""

import itertools

from bots.models import BotInstance
from groups.models import EnforcedChannel, GroupChannel, ProtectedGroup

_ids = itertools.count(1)


def fake_token(bot_id: int | None = None) -> str:
    """A token in Telegram's format; never a real one."""
    bot_id = bot_id or 7000000000 + next(_ids)
    return f"{bot_id}:AAF{'x' * 28}{bot_id % 10000:04d}"


def make_bot(token: str | None = None, **fields) -> BotInstance:
    fields.setdefault("username", f"test{next(_ids)}_bot")
    bot = BotInstance(**fields)
    bot.set_token(token or fake_token())
    bot.save()
    return bot


def make_channel(bot: BotInstance, **fields) -> EnforcedChannel:
    n = next(_ids)
    fields.setdefault("chat_id", -1002000000000 - n)
    fields.setdefault("title", f"Channel {n}")
    fields.setdefault("username", f"channel{n}")
    return EnforcedChannel.objects.create(bot=bot, **fields)


def make_group(bot: BotInstance | None = None, channels=(), **fields) -> ProtectedGroup:
    n = next(_ids)
    bot = bot or make_bot()
    fields.setdefault("chat_id", -1001000000000 - n)
    fields.setdefault("title", f"Group {n}")
    group = ProtectedGroup.objects.create(bot=bot, **fields)
    for channel in channels:
        GroupChannel.objects.create(group=group, channel=channel)
    return group
