"""/people (the directory, as the people page scopes it) and /referral-links."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from dashboard import people as directory

router = Router(tags=["people"])
LANGUAGE = r"^([A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*)?$"


class PeopleFilter(Schema):
    group: int | None = Field(default=None, description="ProtectedGroup id: people seen there")
    language: str = Field(default="", max_length=16, pattern=LANGUAGE,
                          description="Telegram language code; `en` also matches `en-gb`")
    blocked: bool | None = Field(default=None, description="Has blocked one of your bots")
    referred: bool | None = Field(default=None, description="Came through one of your links")
    page: int = Field(default=1, ge=1, le=100_000)
    limit: int = Field(default=50, ge=1, le=500)


class PersonOut(Schema):
    telegram_id: int
    first_name: str
    last_name: str
    username: str
    language_code: str
    first_seen: datetime
    last_seen: datetime
    blocked: bool
    groups: list[int] = Field(description="Ids of your groups they were seen in")
    referred_by: str = Field(description="Who brought them, when it is you or your group")
    referred_at: datetime | None


class PeoplePageOut(Schema):
    items: list[PersonOut]
    count: int
    next_page: int | None = Field(description="Pass as page for the next page; null at the end")


class OwnerLinkOut(Schema):
    bot: str
    url: str


class GroupLinkOut(Schema):
    group_id: int
    title: str
    url: str


class ReferralLinksOut(Schema):
    owner: list[OwnerLinkOut]
    groups: list[GroupLinkOut]


@router.get("/people", response=PeoplePageOut)
def list_people(request: HttpRequest, filters: Query[PeopleFilter]):
    """Newest seen first; the people of your groups (everyone for staff)."""
    items = directory.people(request.auth, directory.Filters(
        group=filters.group, language=filters.language, blocked=filters.blocked,
        referred=filters.referred,
    ))
    start = (filters.page - 1) * filters.limit
    rows = list(items[start:start + filters.limit + 1])
    more = len(rows) > filters.limit
    rows = directory.describe(request.auth, rows[: filters.limit])
    return {
        "items": [_person(p) for p in rows],
        "count": items.count(),
        "next_page": filters.page + 1 if more else None,
    }


def _person(person) -> dict:
    return {
        "telegram_id": person.telegram_id, "first_name": person.first_name,
        "last_name": person.last_name, "username": person.username,
        "language_code": person.language_code, "first_seen": person.first_seen,
        "last_seen": person.last_seen, "blocked": person.blocked,
        "groups": [g.pk for g in person.groups], "referred_by": person.referrer,
        # Only a referral in scope: that someone else's link brought them is not theirs.
        "referred_at": person.referred_at if person.referrer else None,
    }


@router.get("/referral-links", response=ReferralLinksOut)
def referral_links(request: HttpRequest):
    """Your own referral link (one per bot your groups use) and each of your groups'."""
    return directory.referral_links(request.auth)
