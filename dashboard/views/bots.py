"""Bots: status from heartbeats, add by token (never shown again), enable/disable."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from bots import registration
from bots.models import AuditLog
from dashboard import access, figures, services
from dashboard.forms import AddBotForm
from dashboard.views.common import base_context, page_or_partial

SOURCE = AuditLog.Source.DASHBOARD


def _context(request: HttpRequest, form: AddBotForm | None = None, added=None) -> dict:
    bots = access.visible_bots(request.user).select_related("status")
    owned = access.owned_bot_ids(request.user)
    return base_context(request, "bots") | {
        # The state reads as on the overview's "Needs attention" (figures.bot_state).
        "bots": [(bot, owned is None or bot.pk in owned, figures.bot_state(bot)) for bot in bots],
        "form": form or AddBotForm(), "added": added,
    }


@require_GET
@login_required
def bot_list(request: HttpRequest) -> HttpResponse:
    return page_or_partial(request, "dashboard/bots.html", "bot-table", _context(request))


@require_POST
@login_required
def bot_add(request: HttpRequest) -> HttpResponse:
    access.require_change(request.user)
    form = AddBotForm(request.POST)
    added = None
    if form.is_valid():
        try:
            added = registration.register_bot(
                form.cleaned_data["token"], owner=request.user,
                actor=services.actor_for(request.user, SOURCE))
            form = AddBotForm()
        except registration.TokenRejected as exc:
            form.add_error("token", str(exc))
    if request.htmx:
        return render(request, "dashboard/bots.html#bot-section", _context(request, form, added))
    if added:
        return redirect("dashboard:bots")
    return render(request, "dashboard/bots.html", _context(request, form))


@require_POST
@login_required
def bot_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    bot = access.get_bot_for_change(request.user, pk)
    registration.set_bot_active(bot.pk, not bot.is_active,
                                actor=services.actor_for(request.user, SOURCE))
    if request.htmx:
        return render(request, "dashboard/bots.html#bot-section", _context(request))
    return redirect("dashboard:bots")
