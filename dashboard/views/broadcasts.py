"""The staff Broadcasts page: every /broadcast, its progress and its results.

Only staff see it (404 for anyone else: owners are recipients, not senders).
While a broadcast is sending, the table refreshes itself by htmx polling; once
none is, the polling stops.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from dashboard import access
from dashboard.views.common import base_context, page_or_partial
from verification import broadcasts
from verification.models import Broadcast

SHOWN = 50
REFRESH_SECONDS = 3


@require_GET
@login_required
def broadcast_list(request: HttpRequest) -> HttpResponse:
    if not access.sees_everything(request.user):
        raise Http404
    rows = list(Broadcast.objects.exclude(state=Broadcast.State.DRAFT)
                .select_related("bot").order_by("-created_at", "-pk")[:SHOWN])
    counts = broadcasts.progress(rows)
    items = [{"broadcast": b, "counts": counts[b.pk], **_totals(counts[b.pk])} for b in rows]
    context = base_context(request, "broadcasts") | {
        "items": items,
        "sending": any(b.state == Broadcast.State.SENDING for b in rows),
        "refresh_seconds": REFRESH_SECONDS,
    }
    return page_or_partial(request, "dashboard/broadcasts.html", "broadcast-table", context)


def _totals(counts: dict[str, int]) -> dict[str, int]:
    status = broadcasts.Status
    total = sum(counts.values())
    done = total - counts[status.QUEUED] - counts[status.SENDING]
    return {
        "total": total,
        "skipped": counts[status.SKIPPED_BLOCKED] + counts[status.SKIPPED_OPTED_OUT],
        "failed": counts[status.FAILED] + counts[status.UNKNOWN],
        "percent": round(100 * done / total) if total else 100,
    }
