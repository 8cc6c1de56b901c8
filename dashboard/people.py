"""The people directory as an owner sees it: the people page and `GET /api/v1/people`.

Scope (the tenancy rule of `access`, applied to people): an owner sees the
people seen in the groups they may see now (the member ledger,
`groups.GroupMember`) and the people their own referral links brought (theirs,
or one of those groups'). Staff see everyone. What a person did with bots
outside that scope (blocked another owner's bot, came through another owner's
link) is not shown and cannot be filtered on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet

from bots import referrals
from bots.models import BotInstance, BotUser, TelegramUser
from dashboard import access
from groups.models import GroupMember, ProtectedGroup

MAX_LANGUAGES = 50  # the language filter offers the most recent ones


@dataclasses.dataclass(frozen=True)
class Filters:
    group: int | None = None
    language: str = ""
    blocked: bool | None = None
    referred: bool | None = None


@dataclasses.dataclass(frozen=True)
class Scope:
    """What one dashboard user may see of the directory (one group's part, if named)."""

    user: object
    everything: bool
    groups: QuerySet[ProtectedGroup]
    one_group: bool

    @classmethod
    def of(cls, user, group: int | None = None) -> Scope:
        groups = access.visible_groups(user)
        if group is not None:
            # Another owner's group is a 404, as everywhere.
            groups = groups.filter(pk=access.get_group_for(user, group).pk)
        return cls(user, access.sees_everything(user) and group is None, groups,
                   group is not None)

    def referred_here(self) -> Q:
        """Referred through a link in scope: the groups', and the owner's own."""
        if self.everything:
            return Q(referred_at__isnull=False)
        mine = Q(referred_by_group_id__in=self.groups.values("pk"))
        if not self.one_group:
            mine |= Q(referred_by_user=self.user)
        return mine

    def blocked_here(self) -> Exists:
        """Has blocked one of the bots in scope."""
        blocks = BotUser.objects.filter(user=OuterRef("pk"), blocked_at__isnull=False)
        if not self.everything:
            blocks = blocks.filter(bot_id__in=self.groups.values("bot_id"))
        return Exists(blocks)


def people(user, filters: Filters = Filters()) -> QuerySet[TelegramUser]:
    """The people `user` may see, filtered, newest first, with `blocked` annotated."""
    scope = Scope.of(user, filters.group)
    items = TelegramUser.objects.all()
    if not scope.everything:
        seen = GroupMember.objects.filter(group__in=scope.groups).values("user_id")
        items = items.filter(Q(telegram_id__in=seen) | scope.referred_here())
    items = items.annotate(blocked=scope.blocked_here())
    if filters.language:
        code = filters.language.strip().lower()
        items = items.filter(Q(language_code__iexact=code)
                             | Q(language_code__istartswith=f"{code}-"))
    if filters.blocked is not None:
        items = items.filter(blocked=filters.blocked)
    if filters.referred is True:
        items = items.filter(scope.referred_here())
    elif filters.referred is False:
        items = items.exclude(scope.referred_here())
    return items.order_by("-last_seen", "pk")


def languages(user) -> list[str]:
    """Language codes among the people `user` may see (the filter's choices)."""
    codes = (people(user).exclude(language_code="").order_by()
             .values_list("language_code", flat=True).distinct()[:MAX_LANGUAGES])
    return sorted({c.lower() for c in codes})


def describe(user, page: Iterable[TelegramUser]) -> list[TelegramUser]:
    """Each person with `groups` (the visible groups they were seen in) and `referrer`
    (who brought them, when that is in scope): three queries for a whole page."""
    rows = list(page)
    ids = [p.telegram_id for p in rows]
    visible = access.visible_groups(user)
    seen_in: dict[int, list[ProtectedGroup]] = {}
    for member in GroupMember.objects.filter(user_id__in=ids, group__in=visible) \
            .select_related("group").order_by("group__title"):
        seen_in.setdefault(member.user_id, []).append(member.group)
    group_ids = {p.referred_by_group_id for p in rows if p.referred_by_group_id}
    groups = {g.pk: g for g in visible.filter(pk__in=group_ids)}
    owner_ids = {p.referred_by_user_id for p in rows if p.referred_by_user_id}
    owners = {u.pk: u for u in get_user_model().objects.filter(pk__in=owner_ids)
              .select_related("telegram")} if owner_ids else {}
    everything = access.sees_everything(user)
    for person in rows:
        person.groups = seen_in.get(person.telegram_id, [])
        person.referrer = _referrer(person, user, everything, groups, owners)
    return rows


def _referrer(person: TelegramUser, user, everything: bool, groups: dict, owners: dict) -> str:
    if person.referred_by_group_id in groups:
        return str(groups[person.referred_by_group_id])
    if person.referred_by_user_id is not None and (
            everything or person.referred_by_user_id == user.pk):
        owner = owners.get(person.referred_by_user_id)
        if owner is not None:
            account = getattr(owner, "telegram", None)
            return str(account) if account is not None else owner.get_username()
    return ""


def referral_links(user) -> dict[str, list[dict]]:
    """The owner's own link (one per bot their groups use) and each visible group's."""
    groups = access.visible_groups(user).select_related("bot").order_by("title", "pk")
    bots = BotInstance.objects.filter(groups__in=groups).exclude(username="").distinct() \
        .order_by("username")
    owner = [{"bot": f"@{bot.username}", "url": referrals.owner_link(bot.username, user.pk)}
             for bot in bots] if user.is_authenticated else []
    group_links = [{"group_id": g.pk, "title": str(g),
                    "url": referrals.group_link(g.bot.username, g.pk)}
                   for g in groups if g.bot.username]
    return {"owner": owner, "groups": group_links}
