"""Request rates: django-ninja's throttles, for the API and for the login endpoints.

The API is throttled per credential (each API token, or each browser session's
user) and per address. The one-time-link and Login Widget endpoints are plain
Django views; `per_address` puts the same ninja throttle in front of them, so
every 429 in Nezuko comes from one implementation and carries `Retry-After`.
Wrong passwords are django-axes' business (see `dashboard.auth.lockout_response`).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from ninja.throttling import SimpleRateThrottle


class SettingsRateThrottle(SimpleRateThrottle):
    """A ninja throttle whose rate is the named setting, read at each request
    (ninja reads it once, when the API is built; tests and operators change it)."""

    setting = ""

    def __init__(self) -> None:
        super().__init__(getattr(settings, self.setting))

    def allow_request(self, request: HttpRequest) -> bool:
        self.rate = getattr(settings, self.setting)
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)


class PerCredentialThrottle(SettingsRateThrottle):
    """One budget per API token (by its digest), or per user for a browser session."""

    scope = "credential"
    setting = "API_RATE_PER_TOKEN"

    def get_cache_key(self, request: HttpRequest) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            ident = "token:" + hashlib.sha256(header[7:].strip().encode()).hexdigest()
        elif getattr(request, "auth", None) is not None:
            ident = f"user:{request.auth.pk}"
        else:
            return None  # unauthenticated requests never get this far
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PerAddressThrottle(SettingsRateThrottle):
    """One budget per client address, whoever is logged in."""

    scope = "address"
    setting = "API_RATE_PER_ADDRESS"

    def get_cache_key(self, request: HttpRequest) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TokenAttemptThrottle(PerAddressThrottle):
    """Every `Authorization: Bearer` attempt from one address, valid or not."""

    scope = "token-attempt"


def api_throttles() -> list[SimpleRateThrottle]:
    return [PerCredentialThrottle(), PerAddressThrottle()]


class LoginEndpointThrottle(PerAddressThrottle):
    scope = "login-endpoint"
    setting = "LOGIN_RATE_PER_ADDRESS"


def too_many_requests(request: HttpRequest, retry_after: float | None) -> HttpResponse:
    seconds = max(1, math.ceil(retry_after or 60))
    html = render_to_string("dashboard/too_many.html", {"retry_after": seconds}, request=request)
    response = HttpResponse(html, status=429)
    response["Retry-After"] = str(seconds)
    return response


def per_address(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answers 429 with Retry-After past LOGIN_RATE_PER_ADDRESS requests from one address."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        throttle = LoginEndpointThrottle()
        if not throttle.allow_request(request):
            return too_many_requests(request, throttle.wait())
        return view(request, *args, **kwargs)

    return wrapper
