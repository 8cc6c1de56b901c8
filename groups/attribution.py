"""The growth funnel's writes: warned -> joined the channel -> verified -> left.

Each function is one `groups.ledger` operation (named in `OPERATIONS`), so an
outage spools it and the replay applies it later with the time it happened
(`at`). They set values rather than add to them, so a replayed batch or a
redelivered update applies harmlessly twice. See docs/growth.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from groups.models import Attribution, GroupChannel

# A join without the group's link counts for the group whose warning came last,
# if it came this recently.
LIKELY_WINDOW = timedelta(hours=24)


def _warned(*, group_pk: int, channel_chat_ids: list[int], user_id: int, at: datetime) -> None:
    """A warning (or a join-request message) named these channels.

    The first journey per group, channel and person is the one the funnel counts:
    a repeated warning, or one after they joined and left, changes nothing.
    """
    for channel_chat_id in channel_chat_ids:
        row, created = Attribution.objects.get_or_create(
            group_id=group_pk, channel_chat_id=channel_chat_id, user_id=user_id,
            defaults={"started_at": at, "warned_at": at})
        if not created and row.warned_at is None and row.joined_at is not None \
                and row.joined_at > at:
            # Replayed out of order: the warning came before the join.
            row.warned_at, row.started_at = at, min(row.started_at, at)
            row.save(update_fields=["warned_at", "started_at"])


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
        row, created = Attribution.objects.get_or_create(
            group_id=link["group_id"], channel_chat_id=channel_chat_id, user_id=user_id,
            defaults={"started_at": at, "joined_at": at, "how": Attribution.How.EXACT})
        if not created and row.joined_at is None:
            row.joined_at, row.how = at, Attribution.How.EXACT
            row.save(update_fields=["joined_at", "how"])
        return
    row = (Attribution.objects
           .filter(group__bot_id=bot_pk, channel_chat_id=channel_chat_id, user_id=user_id,
                   joined_at__isnull=True, warned_at__gte=at - LIKELY_WINDOW,
                   warned_at__lte=at)
           .order_by("-warned_at").first())
    if row is not None:
        row.joined_at, row.how = at, Attribution.How.LIKELY
        row.save(update_fields=["joined_at", "how"])


def _verified(*, group_pk: int, user_id: int, at: datetime) -> None:
    """Unmuted or approved because they now satisfy every channel. A journey whose
    channel join was not seen (no chat_member updates: the bot is not admin
    there, or it came while runbot was down) joined by now: likely."""
    journeys = Attribution.objects.filter(group_id=group_pk, user_id=user_id,
                                          verified_at__isnull=True, left_at__isnull=True)
    journeys.filter(joined_at__isnull=True, warned_at__isnull=False).update(
        joined_at=at, how=Attribution.How.LIKELY)
    journeys.filter(joined_at__isnull=False).update(verified_at=at)


def _left(*, bot_pk: int, channel_chat_id: int, user_id: int, at: datetime) -> None:
    Attribution.objects.filter(
        Q(group__bot_id=bot_pk), channel_chat_id=channel_chat_id, user_id=user_id,
        joined_at__isnull=False, left_at__isnull=True,
    ).update(left_at=at)


OPERATIONS = {
    "attribution_warned": _warned,
    "attribution_joined": _joined,
    "attribution_verified": _verified,
    "attribution_left": _left,
}
