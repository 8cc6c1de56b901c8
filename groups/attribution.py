"""The growth funnel's writes: warned -> joined the channel -> verified -> left.

Each function is one `groups.ledger` operation (named in `OPERATIONS`), so an
outage spools it and the replay applies it later with the time it happened
(`at`). A journey (`Attribution`) moves forward only, and each step is added
to the day sums (`FunnelDay`) at the moment the journey takes it, so a
replayed batch or a redelivered update, which finds the step taken, adds
nothing twice. See docs/growth.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F

from groups.models import Attribution, FunnelDay, GroupChannel

# A join without the group's link counts for the group whose warning came last,
# if it came this recently.
LIKELY_WINDOW = timedelta(hours=24)
RETENTION = {"left_7d": timedelta(days=7), "left_30d": timedelta(days=30)}


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _add(journey: Attribution, moment: datetime, **counts: int) -> None:
    """Add to the day sums of the journey's group and channel on `moment`'s day."""
    key = {"group_id": journey.group_id, "channel_chat_id": journey.channel_chat_id,
           "day": day_of(moment)}
    changes = {field: F(field) + n for field, n in counts.items()}
    if FunnelDay.objects.filter(**key).update(**changes):
        return
    try:
        with transaction.atomic():
            FunnelDay.objects.create(**key, **counts)
    except IntegrityError:
        # Another process created the day's row first.
        FunnelDay.objects.filter(**key).update(**changes)


def _warned(*, group_pk: int, channel_chat_ids: list[int], user_id: int, at: datetime) -> None:
    """A warning (or a join-request message) named these channels.

    The first journey per group, channel and person is the one the funnel counts:
    a repeated warning, or one after they joined and left, changes nothing.
    """
    for channel_chat_id in channel_chat_ids:
        journey, created = Attribution.objects.get_or_create(
            group_id=group_pk, channel_chat_id=channel_chat_id, user_id=user_id,
            defaults={"started_at": at, "warned_at": at})
        if created:
            _add(journey, at, started=1, warned=1)


def _joined(*, bot_pk: int, channel_chat_id: int, user_id: int, invite_link: str,
            at: datetime) -> None:
    """A channel join: exact for the group whose own link they used, otherwise
    likely for the group whose warning came last within `LIKELY_WINDOW`."""
    link = None
    if invite_link:
        link = (GroupChannel.objects.filter(group__bot_id=bot_pk, channel__chat_id=channel_chat_id,
                                            invite_link=invite_link)
                .values("group_id").first())
    if link is not None:
        journey, created = Attribution.objects.get_or_create(
            group_id=link["group_id"], channel_chat_id=channel_chat_id, user_id=user_id,
            defaults={"started_at": at, "joined_at": at, "how": Attribution.How.EXACT})
        if created:
            _add(journey, at, started=1, joined_exact=1, joined=1)
        elif journey.joined_at is None:
            _join(journey, at, Attribution.How.EXACT)
        return
    journey = (Attribution.objects
               .filter(group__bot_id=bot_pk, channel_chat_id=channel_chat_id, user_id=user_id,
                       joined_at__isnull=True, warned_at__gte=at - LIKELY_WINDOW,
                       warned_at__lte=at)
               .order_by("-warned_at").first())
    if journey is not None:
        _join(journey, at, Attribution.How.LIKELY)


def _join(journey: Attribution, at: datetime, how: str) -> None:
    journey.joined_at, journey.how = at, how
    journey.save(update_fields=["joined_at", "how"])
    _add(journey, journey.started_at, **{f"joined_{how}": 1})
    _add(journey, at, joined=1)


def _verified(*, group_pk: int, user_id: int, at: datetime) -> None:
    """Unmuted or approved because they now satisfy every channel. A journey whose
    channel join was not seen (no chat_member updates: the bot is not admin
    there, or it came while runbot was down) joined by now: likely."""
    journeys = Attribution.objects.filter(group_id=group_pk, user_id=user_id,
                                          verified_at__isnull=True, left_at__isnull=True)
    for journey in journeys:
        if journey.joined_at is None:
            if journey.warned_at is None:
                continue
            _join(journey, at, Attribution.How.LIKELY)
        journey.verified_at = at
        journey.save(update_fields=["verified_at"])
        _add(journey, journey.started_at, verified=1)


def _left(*, bot_pk: int, channel_chat_id: int, user_id: int, at: datetime) -> None:
    journeys = Attribution.objects.filter(
        group__bot_id=bot_pk, channel_chat_id=channel_chat_id, user_id=user_id,
        joined_at__isnull=False, left_at__isnull=True)
    for journey in journeys:
        journey.left_at = at
        journey.save(update_fields=["left_at"])
        stayed = at - journey.joined_at
        left = {field: 1 for field, span in RETENTION.items() if stayed < span}
        if left:
            _add(journey, journey.joined_at, **left)


OPERATIONS = {
    "attribution_warned": _warned,
    "attribution_joined": _joined,
    "attribution_verified": _verified,
    "attribution_left": _left,
}
