"""The staff logs page: the last lines runbot logged, filterable, refreshed by htmx.

Only staff see it; anyone else gets a 404 (the page's existence is not theirs
to know). The lines come from this process's memory (`dashboard.logring`), so
the page shows what the process serving it logged: runbot with its web server.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from dashboard import access
from dashboard.logring import LEVELS, ring
from dashboard.views.common import base_context, page_or_partial

SHOWN = 200  # lines on the page; the ring may hold more
REFRESH_SECONDS = 5


@require_GET
@login_required
def log_lines(request: HttpRequest) -> HttpResponse:
    if not access.sees_everything(request.user):
        raise Http404
    level = request.GET.get("level", "info")
    if level not in LEVELS:
        level = "info"
    bots = ring.bots()
    bot = request.GET.get("bot", "")
    if bot not in bots:
        bot = ""
    context = base_context(request, "logs") | {
        "entries": ring.recent(level=level, bot=bot, limit=SHOWN),
        "levels": LEVELS,
        "level": level,
        "bots": bots,
        "bot": bot,
        "shown": SHOWN,
        "capacity": ring.capacity,
        "refresh_seconds": REFRESH_SECONDS,
    }
    return page_or_partial(request, "dashboard/logs.html", "log-table", context)
