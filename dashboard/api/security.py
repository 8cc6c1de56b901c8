"""API authentication: the browser's session, or a personal token for scripts."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import Throttled
from ninja.security import HttpBearer, SessionAuth

from dashboard.models import ApiToken, digest
from dashboard.throttling import TokenAttemptThrottle


class TokenAuth(HttpBearer):
    """`Authorization: Bearer nzk_…`; only digests are stored, revoked tokens fail."""

    def authenticate(self, request: HttpRequest, token: str):
        # Before the lookup, so guessing tokens is rate limited too: ninja's throttles
        # run only after authentication succeeded.
        guesses = TokenAttemptThrottle()
        if not guesses.allow_request(request):
            raise Throttled(guesses.wait())
        row = (
            ApiToken.objects.active()
            .select_related("user")
            .filter(token_hash=digest(token))
            .first()
        )
        if row is None or not row.user.is_active:
            return None
        # At most one write a minute per token, not one per request.
        now = timezone.now()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        request.user = row.user
        return row.user


class BrowserSession(SessionAuth):
    """Django's session; unsafe methods need the CSRF token, as on the pages."""

    def authenticate(self, request: HttpRequest, key: str | None):
        user = super().authenticate(request, key)
        return user if user and user.is_active else None


AUTH = [TokenAuth(), BrowserSession()]
