"""/events (keyset-paged, filtered) and /commands (queue one, read its result)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from bots.models import AuditLog
from dashboard import access
from dashboard.api.schemas import CommandIn, CommandOut, EventPageOut
from dashboard.services import actor_for
from groups.services import members
from verification.models import Outcome

router = Router(tags=["events"])


class EventFilter(Schema):
    group: int | None = Field(default=None, description="ProtectedGroup id")
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = Field(default=None, description="From the previous page")
    limit: int = Field(default=50, ge=1, le=500)


@router.get("/events", response=EventPageOut)
def list_events(request: HttpRequest, filters: Query[EventFilter]):
    """Newest first. Paged by id, so deep pages stay as fast as the first."""
    events = access.visible_events(request.auth)
    if filters.group is not None:
        events = events.filter(group=access.get_group_for(request.auth, filters.group))
    if filters.outcome:
        events = events.filter(outcome=filters.outcome)
    if filters.since:
        events = events.filter(created_at__gte=filters.since)
    if filters.until:
        events = events.filter(created_at__lt=filters.until)
    if filters.before_id:
        events = events.filter(pk__lt=filters.before_id)
    items = list(events.order_by("-pk")[: filters.limit + 1])
    more = len(items) > filters.limit
    items = items[: filters.limit]
    return {"items": items, "next_before_id": items[-1].pk if more and items else None}


commands_router = Router(tags=["commands"])


@commands_router.post("/commands", response={201: CommandOut})
def queue_command(request: HttpRequest, payload: CommandIn):
    """Queues unmute/ban/unban/recheck for runbot; poll GET /commands/{id} for the result."""
    group = access.get_group_for(request.auth, payload.group_id)
    change = members.CHANGES[payload.kind]
    command = change(group.pk, payload.user_id,
                     actor=actor_for(request.auth, AuditLog.Source.API))
    return Status(201, command)


@commands_router.get("/commands/{command_id}", response=CommandOut)
def get_command(request: HttpRequest, command_id: int):
    return access.get_command_for(request.auth, command_id)
