"""The impact preview of observe (shadow) mode: what enforcement would have done.

Read by `/status` and the dashboard's group page, so an owner can see, before
switching to enforcement, how many members would have been restricted, which
channels they lacked and how many of their messages a day would have gone.

Two sources, both honest about what they are:

* the `would_restrict` events recorded while observing (durable);
* the members Nezuko already knows (the ledger, most recently seen first)
  whose subscriptions the membership cache holds right now: answers expire
  (minutes), so members not checked lately are counted apart as unknown.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.utils import timezone

from bots.models import BotInstance
from groups.config import GroupConfig, load_group_config
from groups.models import GroupMember, ProtectedGroup
from verification.decisions import Check, screen_person, shortfall
from verification.membership import _l2_key, memberships
from verification.models import Outcome, VerificationEvent
from verification.updates import Person

# Bounds: the preview reads at most this many events and known members.
EVENTS_READ = 5_000
MEMBERS_READ = 2_000


@dataclasses.dataclass(frozen=True, slots=True)
class Impact:
    observing: bool
    members: int  # distinct people who would have been restricted
    decisions: int  # would-restrict decisions recorded
    messages_today: int  # of them, messages in the last 24 hours
    since: datetime | None  # the first would-restrict decision
    channels: tuple[tuple[str, int], ...]  # (channel, people who lacked it), most first
    known_members: int  # known members checked against the policy now
    known_unsubscribed: int  # ...of whom the policy is not satisfied
    known_unchecked: int  # ...and whose answers are not cached (not checked lately)

    @property
    def any(self) -> bool:
        return bool(self.decisions or self.known_unsubscribed)


NOTHING = Impact(False, 0, 0, 0, None, (), 0, 0, 0)


def preview(group: ProtectedGroup, *, now: datetime | None = None) -> Impact:
    """One query for an enforcing group that never observed; a handful, bounded, else."""
    now = now or timezone.now()
    observing = group.action == ProtectedGroup.Action.OBSERVE
    events = VerificationEvent.objects.filter(group=group, outcome=Outcome.WOULD_RESTRICT)
    rows = list(events.order_by("-pk").values_list("user_id", "missing_channel_ids",
                                                   "created_at", "detail")[:EVENTS_READ])
    if not rows and not observing:
        return NOTHING
    # Read afresh: a web worker's cached configuration may be older than the page.
    config = load_group_config(group.bot_id, group.chat_id)
    lacked: dict[int, set[int]] = {}
    for user_id, missing, _at, _detail in rows:
        for chat_id in missing or ():
            lacked.setdefault(chat_id, set()).add(user_id)
    labels = {c.chat_id: c.label for c in config.channels} if config else {}
    channels = Counter({labels.get(chat_id, str(chat_id)): len(users)
                        for chat_id, users in lacked.items()})
    known, unsubscribed, unchecked = _known_members(group, config)
    return Impact(
        observing=observing,
        members=len({row[0] for row in rows}),
        decisions=len(rows) if len(rows) < EVENTS_READ else events.count(),
        messages_today=sum(1 for _u, _m, at, detail in rows
                           if at >= now - timedelta(days=1) and detail.startswith("message")),
        since=rows[-1][2] if rows else None,
        channels=tuple(channels.most_common()),
        known_members=known,
        known_unsubscribed=unsubscribed,
        known_unchecked=unchecked,
    )


apreview = sync_to_async(preview)


def _known_members(group: ProtectedGroup, config: GroupConfig | None) -> tuple[int, int, int]:
    """(checked, not satisfying the policy, not checked lately) among known members."""
    if config is None or not config.channels:
        return 0, 0, 0
    people = list(GroupMember.objects.filter(
        group=group, status__in=[GroupMember.Status.MEMBER, GroupMember.Status.RESTRICTED],
    ).order_by("-last_seen_at").values_list("user_id", "first_name", "username")[:MEMBERS_READ])
    bot_telegram_id = BotInstance.objects.values_list("telegram_id", flat=True).get(
        pk=group.bot_id)
    answers = _cached_answers(bot_telegram_id, config, [p[0] for p in people])
    checked = unsubscribed = unchecked = 0
    for user_id, name, username in people:
        if not isinstance(screen_person(Person(user_id, name, username), config), Check):
            continue  # admins and the allow-list are never restricted
        mine = answers.get(user_id, {})
        lacking = shortfall(config, config.channels, mine)
        if lacking is not None and lacking.unknown:
            unchecked += 1
            continue
        checked += 1
        unsubscribed += lacking is not None
    return checked, unsubscribed, unchecked


def _cached_answers(bot_telegram_id: int, config: GroupConfig,
                    user_ids: list[int]) -> dict[int, dict[int, bool]]:
    """What the membership cache holds now: this process's memory, then the shared
    level (one round trip). Nothing is asked of Telegram."""
    answers: dict[int, dict[int, bool]] = {}
    missing_keys = {}
    for user_id in user_ids:
        for channel in config.channels:
            key = (bot_telegram_id, channel.chat_id, user_id)
            value = memberships.peek(key)
            if value is None:
                missing_keys[_l2_key(key)] = key
            else:
                answers.setdefault(user_id, {})[channel.chat_id] = value
    if missing_keys:
        try:
            shared = cache.get_many(list(missing_keys))
        except Exception:  # the shared cache is down: memory is all there is
            shared = {}
        for l2_key, value in shared.items():
            _bot, channel_id, user_id = missing_keys[l2_key]
            answers.setdefault(user_id, {})[channel_id] = bool(value)
    return answers
