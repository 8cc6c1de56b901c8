"""Personal API tokens: created (shown once) and revoked on the dashboard."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from bots import audit
from bots.models import AuditLog
from dashboard import services
from dashboard.forms import ApiTokenForm
from dashboard.models import ApiToken
from dashboard.views.common import base_context


def _context(request: HttpRequest, form: ApiTokenForm | None = None, plaintext: str = "") -> dict:
    return base_context(request, "tokens") | {
        "tokens": ApiToken.objects.filter(user=request.user).active(),
        "form": form or ApiTokenForm(),
        "plaintext": plaintext,
    }


@require_http_methods(["GET", "POST"])
@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    template = "dashboard/tokens.html#token-section" if request.htmx else "dashboard/tokens.html"
    if request.method == "GET":
        return render(request, template, _context(request))
    form = ApiTokenForm(request.POST)
    plaintext = ""
    if form.is_valid():
        token, plaintext = ApiToken.issue(request.user, form.cleaned_data["name"])
        audit.record(audit.AuditAction.API_TOKEN_CREATED, token,
                     by=services.actor_for(request.user, AuditLog.Source.DASHBOARD))
        form = ApiTokenForm()
    return render(request, template, _context(request, form, plaintext))


@require_POST
@login_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Only one's own tokens: anything else is a 404.
    token = get_object_or_404(ApiToken.objects.active(), pk=pk, user=request.user)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record(audit.AuditAction.API_TOKEN_REVOKED, token,
                 by=services.actor_for(request.user, AuditLog.Source.DASHBOARD))
    template = "dashboard/tokens.html#token-section" if request.htmx else "dashboard/tokens.html"
    return render(request, template, _context(request))
