"""Groups: table with search/filter/sort/paging, detail, settings, member commands."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bots.models import AuditLog
from dashboard import access, services
from dashboard.forms import GroupFilterForm, GroupSettingsForm
from dashboard.views.common import base_context, flash, page_or_partial, paginate, refused
from dashboard.views.pages import FEED_LIMIT, feed_row_from_model
from groups import rights
from groups.models import GroupMember

SOURCE = AuditLog.Source.DASHBOARD
MEMBERS_PER_PAGE = 25


@require_GET
@login_required
def group_list(request: HttpRequest) -> HttpResponse:
    form = GroupFilterForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    groups = access.visible_groups(request.user).select_related("bot").annotate(
        # Both counts join from the group; distinct keeps one from multiplying the other.
        restricted_count=Count("members", filter=Q(members__restricted_by_nezuko=True),
                               distinct=True),
        channel_count=Count("links", distinct=True),
    )
    if q := data.get("q"):
        groups = groups.filter(Q(title__icontains=q) | Q(username__icontains=q))
    status = data.get("status")
    if status == "enabled":
        groups = groups.enabled()
    elif status == "disabled":
        groups = groups.filter(enabled=False)
    elif status == "attention":
        groups = groups.needing_attention()
    sort = data.get("sort") or "title"
    groups = groups.order_by(GroupFilterForm.SORTS[sort], "pk")
    context = base_context(request, "groups") | {
        "form": form, "page": paginate(request, groups, 20), "sort": sort,
        "query": request.GET.copy(),
    }
    return page_or_partial(request, "dashboard/groups.html", "group-table", context)


def _detail_context(request: HttpRequest, group, form: GroupSettingsForm | None = None) -> dict:
    # Newest first; a row without a time (restricted before it was kept) last on
    # every database (PostgreSQL puts NULLs first in a descending order).
    restricted = GroupMember.objects.filter(group=group, restricted_by_nezuko=True).order_by(
        F("restricted_at").desc(nulls_last=True), "pk"
    )
    owed = GroupMember.objects.filter(group=group).exclude(owed_action="").order_by(
        "owed_since"
    )[:100]
    events = group.events.select_related("group").order_by("-created_at", "-pk")[:20]
    context = base_context(request, "groups")
    # Buttons and the form follow the person's Telegram rights in this group.
    refusal = access.refusal_for(request.user, group, "settings")
    return context | {
        "can_change": context["can_change"] and refusal is None,
        "change_refusal": refusal.message if refusal and context["can_change"] else "",
        "group": group,
        "channels": group.channels.all(),
        # A raid restricts hundreds: the list pages, below the settings form.
        "members": paginate(request, restricted, MEMBERS_PER_PAGE),
        "owed": owed,
        "rows": [feed_row_from_model(e) for e in events],
        "feed_limit": FEED_LIMIT,
        "form": form or GroupSettingsForm(instance=group),
        "saved": False,
    }


@require_GET
@login_required
def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    group = access.get_group_for(request.user, pk)
    return page_or_partial(request, "dashboard/group_detail.html", "members",
                           _detail_context(request, group))


@require_http_methods(["GET", "POST"])
@login_required
def group_settings(request: HttpRequest, pk: int) -> HttpResponse:
    """The settings form; invalid input re-renders it with inline errors (200)."""
    group = access.get_group_for(request.user, pk)
    if request.method == "GET":
        return render(request, "dashboard/group_detail.html#settings-form",
                      _detail_context(request, group))
    try:
        access.require_change(request.user)
        access.require_right(request.user, group, "settings")
    except PermissionDenied as exc:
        return refused(request, exc)
    form = GroupSettingsForm(request.POST, instance=group)
    context = _detail_context(request, group, form)
    if form.is_valid():
        # Copy the cleaned values onto a fresh row and save through the ORM, so
        # the save signal invalidates runbot's cached config.
        fresh = access.get_group_for(request.user, pk)
        services.update_group_settings(
            fresh, {f: form.cleaned_data[f] for f in services.SETTINGS_FIELDS},
            actor=request.user, source=SOURCE,
        )
        context = _detail_context(request, fresh) | {"saved": True}
    if not request.htmx:
        return redirect("dashboard:group", pk=group.pk) if form.is_valid() else render(
            request, "dashboard/group_detail.html", context)
    return render(request, "dashboard/group_detail.html#settings-form", context)


@require_POST
@login_required
def group_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    group = access.get_group_for(request.user, pk)
    try:
        access.require_change(request.user)
        access.require_right(request.user, group, "disable" if group.enabled else "enable")
    except PermissionDenied as exc:
        return refused(request, exc)
    services.set_group_enabled(group, not group.enabled, actor=request.user, source=SOURCE)
    if request.htmx:
        return render(request, "dashboard/group_detail.html#group-status",
                      _detail_context(request, group))
    return redirect("dashboard:group", pk=group.pk)


@require_POST
@login_required
def member_command(request: HttpRequest, pk: int, user_id: int, kind: str) -> HttpResponse:
    """Queues unmute/ban for runbot and answers with a row that polls the result."""
    group = access.get_group_for(request.user, pk)
    try:
        access.require_change(request.user)
        access.require_right(request.user, group, rights.command_action(kind))
    except PermissionDenied as exc:
        return refused(request, exc)
    try:
        command = services.queue_member_command(group, kind, user_id, actor=request.user,
                                                source=SOURCE)
    except services.ServiceError as exc:
        return flash(request, str(exc))
    return render(request, "dashboard/_command.html", {"command": command})


@require_GET
@login_required
def command_status(request: HttpRequest, pk: int) -> HttpResponse:
    command = access.get_command_for(request.user, pk)
    return render(request, "dashboard/_command.html", {"command": command})
