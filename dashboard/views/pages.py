"""Overview, channels, analytics and audit log."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from bots import audit
from dashboard import access, figures
from dashboard.consumers import feed_row
from dashboard.forms import AnalyticsForm
from dashboard.growth import growth_context
from dashboard.views.common import base_context, page_or_partial, paginate

FEED_ROWS = 30
# The live feed keeps this many rows in the browser (static/js/nezuko.js trims).
FEED_LIMIT = 100


@require_GET
@login_required
def overview(request: HttpRequest) -> HttpResponse:
    if request.htmx and request.GET.get("part") == "last-hour":
        # The chart polls for itself too: rollups land a second after the feed's events.
        return render(request, "dashboard/overview.html#last-hour",
                      {"last_hour": figures.last_hour(request.user)})
    events = list(access.visible_events(request.user).select_related("group").latest(FEED_ROWS))
    rows = [
        feed_row_from_model(event) for event in events
    ]
    context = base_context(request, "overview") | {
        "figures": figures.overview(request.user),
        "rows": rows,
        "feed_limit": FEED_LIMIT,
        "last_hour": figures.last_hour(request.user),
        "attention": access.visible_groups(request.user).needing_attention()[:5],
        "bots_down": [(bot, figures.bot_state(bot)) for bot in figures.bots_down(request.user)],
    }
    return page_or_partial(request, "dashboard/overview.html", "figures", context)


def feed_row_from_model(event) -> dict:
    from verification.events import VerificationEventData

    data = VerificationEventData(
        outcome=event.outcome, bot_id=event.bot_id, group_id=event.group_id,
        chat_id=event.chat_id, user_id=event.user_id, user_name=event.user_name,
        missing_channel_ids=tuple(event.missing_channel_ids or ()),
        latency_ms=event.latency_ms, cache_hit=event.cache_hit, detail=event.detail,
        created_at=event.created_at,
    )
    titles = {event.group_id: event.group.title} if event.group_id else {}
    return feed_row(data, titles)


@require_GET
@login_required
def channels(request: HttpRequest) -> HttpResponse:
    # A channel can be required by other owners' groups too: list only the visible ones.
    groups = Prefetch("groups", queryset=access.visible_groups(request.user))
    items = access.visible_channels(request.user).prefetch_related(groups).select_related("bot")
    context = base_context(request, "channels") | {"page": paginate(request, items)}
    return page_or_partial(request, "dashboard/channels.html", "channel-table", context)


@require_GET
@login_required
def analytics(request: HttpRequest) -> HttpResponse:
    form = AnalyticsForm(request.GET)
    form.is_valid()
    group_ids = access.visible_group_ids(request.user)
    selected = None
    if group_pk := form.cleaned_data.get("group"):
        selected = access.get_group_for(request.user, group_pk)
        group_ids = [selected.pk]
    period = form.cleaned_data.get("period") or figures.default_period(group_ids)
    granularity = form.cleaned_data.get("granularity")
    if period == "1h" or not granularity:
        granularity = figures.PERIOD_STEPS[period]
    window = figures.Window.of(figures.PERIODS[period], granularity)
    query = request.GET.copy()
    query.update({"period": period, "granularity": granularity})
    context = base_context(request, "analytics") | {
        "form": form, "period": period, "granularity": granularity, "selected": selected,
        "groups": access.visible_groups(request.user).only("pk", "title"),
        "periods": list(figures.PERIODS), "window": window, "query": query.urlencode(),
        **figures.analytics(request.user, window, group_ids),
        **growth_context(group_ids, window.start, window.end),
    }
    return page_or_partial(request, "dashboard/analytics.html", "charts", context)


@require_GET
@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    items = access.visible_audit(request.user).select_related("actor__telegram")
    page = paginate(request, items, 50)
    # Read as people say it: "Ann (Telegram)", "Settings changed".
    for entry in page:
        entry.who, entry.what = audit.actor_label(entry), audit.action_label(entry.action)
    context = base_context(request, "audit") | {"page": page}
    return page_or_partial(request, "dashboard/audit.html", "audit-table", context)

