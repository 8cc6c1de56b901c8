"""/groups: list, detail, settings, enable/disable; /channels."""

from __future__ import annotations

from django.db.models import Q
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from bots.audit import Actor
from bots.models import AuditLog
from dashboard import access
from dashboard.api.errors import FieldErrors
from dashboard.api.schemas import ChannelOut, GroupDetailOut, GroupOut, GroupSettingsIn
from dashboard.forms import GroupSettingsForm
from dashboard.services import actor_for
from groups.services import protection, settings

router = Router(tags=["groups"])
# Option names (as typed in Telegram) that differ from their field's name.
OPTION_FIELDS = {"warning_delay": "warning_delete_after", "fail": "fail_mode"}
SOURCE = AuditLog.Source.API
# Far past any real list, and far below what the databases' OFFSET accepts.
MAX_OFFSET = 1_000_000_000


class GroupFilter(Schema):
    q: str | None = Field(default=None, max_length=100)
    status: str | None = Field(default=None, pattern="^(enabled|disabled|attention)$")
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


@router.get("/groups", response=list[GroupOut])
def list_groups(request: HttpRequest, filters: Query[GroupFilter]):
    groups = access.visible_groups(request.auth)
    if filters.q:
        groups = groups.filter(Q(title__icontains=filters.q) | Q(username__icontains=filters.q))
    if filters.status == "enabled":
        groups = groups.enabled()
    elif filters.status == "disabled":
        groups = groups.filter(enabled=False)
    elif filters.status == "attention":
        groups = groups.filter(needs_attention=True)
    return groups.order_by("title", "pk")[filters.offset:filters.offset + filters.limit]


def _detail(group) -> dict:
    data = GroupOut.from_orm(group).dict()
    data["channels"] = list(group.channels.all())
    data["restricted_now"] = group.members.filter(restricted_by_nezuko=True).count()
    return data


@router.get("/groups/{group_id}", response=GroupDetailOut)
def get_group(request: HttpRequest, group_id: int):
    return _detail(access.get_group_for(request.auth, group_id))


@router.patch("/groups/{group_id}/settings", response=GroupDetailOut)
def update_settings(request: HttpRequest, group_id: int, payload: GroupSettingsIn):
    """Parsed by the same form as the dashboard; validated, audited and applied by
    the one settings service; runbot applies it live. `{}` changes nothing."""
    group = access.get_group_for(request.auth, group_id)
    changes = payload.dict(exclude_unset=True)
    for name, field in OPTION_FIELDS.items():
        if name in changes:
            changes[field] = changes.pop(name)
    current = {f: getattr(group, f) for f in GroupSettingsForm.Meta.fields}
    data = current | changes
    data["allowed_user_ids"] = ", ".join(str(i) for i in data["allowed_user_ids"] or [])
    form = GroupSettingsForm(data, instance=group)
    if not form.is_valid():
        raise FieldErrors({f: [str(m) for m in msgs] for f, msgs in form.errors.items()})
    fresh = settings.update_settings(
        group.pk, {f: form.cleaned_data[f] for f in changes}, actor=_actor(request))
    return _detail(fresh)


@router.post("/groups/{group_id}/enable", response=GroupDetailOut)
def enable_group(request: HttpRequest, group_id: int):
    group = access.get_group_for(request.auth, group_id)
    return _detail(protection.set_group_enabled(group.pk, True, actor=_actor(request)))


@router.post("/groups/{group_id}/disable", response=GroupDetailOut)
def disable_group(request: HttpRequest, group_id: int):
    group = access.get_group_for(request.auth, group_id)
    return _detail(protection.set_group_enabled(group.pk, False, actor=_actor(request)))


def _actor(request: HttpRequest) -> Actor:
    return actor_for(request.auth, SOURCE)


channels_router = Router(tags=["channels"])


@channels_router.get("/channels", response=list[ChannelOut])
def list_channels(request: HttpRequest, limit: int = Query(100, ge=1, le=500),
                  offset: int = Query(0, ge=0, le=MAX_OFFSET)):
    channels = access.visible_channels(request.auth).order_by("title", "pk")
    return channels[offset:offset + limit]


@channels_router.get("/channels/{channel_id}", response=ChannelOut)
def get_channel(request: HttpRequest, channel_id: int):
    return access.get_channel_for(request.auth, channel_id)
