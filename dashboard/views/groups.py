"""Groups: table with search/filter/sort/paging, detail, settings, member commands."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bots import referrals
from bots.audit import Actor
from bots.models import AuditLog
from dashboard import access, services
from dashboard.forms import GroupFilterForm, GroupSettingsForm
from dashboard.growth import growth_context
from dashboard.views.common import base_context, flash, page_or_partial, paginate, refused
from dashboard.views.pages import FEED_LIMIT, feed_row_from_model
from groups.models import GroupMember
from groups.services import members, protection
from groups.services import settings as group_settings_service
from verification import impact

SOURCE = AuditLog.Source.DASHBOARD
MEMBERS_PER_PAGE = 25
GROWTH_DAYS = 30


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
        "impact": impact.preview(group),
        # Opened by a person, it starts the bot and credits this group (bots/referrals.py).
        "referral_link": (referrals.group_link(group.bot.username, group.pk)
                          if group.bot.username else ""),
    }


@require_GET
@login_required
def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    group = access.get_group_for(request.user, pk)
    context = _detail_context(request, group)
    if not (request.htmx and not request.htmx.boosted):
        # The whole page carries the growth section: journeys begun in the last 30 days.
        now = timezone.now()
        context |= growth_context([group.pk], now - timedelta(days=GROWTH_DAYS), now)
    return page_or_partial(request, "dashboard/group_detail.html", "members", context)


@require_http_methods(["GET", "POST"])
@login_required
def group_settings(request: HttpRequest, pk: int) -> HttpResponse:
    """The settings form; invalid input re-renders it with inline errors (200)."""
    group = access.get_group_for(request.user, pk)
    if request.method == "GET":
        return render(request, "dashboard/group_detail.html#settings-form",
                      _detail_context(request, group))
    form = GroupSettingsForm(request.POST, instance=group)
    fresh = None  # the group as saved, once the change went through
    if form.is_valid():
        changes = {f: form.cleaned_data[f] for f in GroupSettingsForm.Meta.fields}
        try:
            fresh = group_settings_service.update_settings(group.pk, changes,
                                                           actor=_actor(request))
        except PermissionDenied as exc:
            return refused(request, exc)
        except ValidationError as exc:
            form.add_error(None, exc)
    context = (_detail_context(request, fresh) | {"saved": True} if fresh is not None
               else _detail_context(request, group, form))
    if not request.htmx:
        return redirect("dashboard:group", pk=group.pk) if fresh is not None else render(
            request, "dashboard/group_detail.html", context)
    return render(request, "dashboard/group_detail.html#settings-form", context)


@require_POST
@login_required
def group_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    group = access.get_group_for(request.user, pk)
    try:
        group = protection.set_group_enabled(group.pk, not group.enabled, actor=_actor(request))
    except PermissionDenied as exc:
        return refused(request, exc)
    if request.htmx:
        return render(request, "dashboard/group_detail.html#group-status",
                      _detail_context(request, group))
    return redirect("dashboard:group", pk=group.pk)


@require_POST
@login_required
def group_enforce(request: HttpRequest, pk: int) -> HttpResponse:
    """Observe mode's one click: start enforcing (mute), through the settings service."""
    group = access.get_group_for(request.user, pk)
    try:
        group = group_settings_service.update_settings(group.pk, {"action": "mute"},
                                                       actor=_actor(request))
    except PermissionDenied as exc:
        return refused(request, exc)
    if request.htmx:
        return render(request, "dashboard/group_detail.html#impact",
                      _detail_context(request, group))
    return redirect("dashboard:group", pk=group.pk)


@require_POST
@login_required
def member_command(request: HttpRequest, pk: int, user_id: int, kind: str) -> HttpResponse:
    """Queues unmute/ban for runbot and answers with a row that polls the result."""
    group = access.get_group_for(request.user, pk)
    change = members.CHANGES.get(kind)
    if change is None:
        return flash(request, _("Unknown command “%(kind)s”; use one of %(known)s.")
                     % {"kind": kind, "known": ", ".join(members.CHANGES)})
    try:
        command = change(group.pk, user_id, actor=_actor(request))
    except PermissionDenied as exc:
        return refused(request, exc)
    except ValidationError as exc:
        return flash(request, " ".join(exc.messages))
    return render(request, "dashboard/_command.html", {"command": command})


def _actor(request: HttpRequest) -> Actor:
    return services.actor_for(request.user, SOURCE)


@require_GET
@login_required
def command_status(request: HttpRequest, pk: int) -> HttpResponse:
    command = access.get_command_for(request.user, pk)
    return render(request, "dashboard/_command.html", {"command": command})
