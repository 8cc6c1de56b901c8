"""TOTP two-factor for staff accounts (django-otp).

A staff account with a confirmed authenticator, or every staff account when
STAFF_2FA_REQUIRED is true, must give a current code after its password before
any page, partial, the admin or the API (by session) answers. The check is one
middleware, so no view can forget it. Owners log in through Telegram, which is
already a second factor, and are not asked.

Routes: `/login/2fa/` asks for the code; `/login/2fa/setup/` enrols an
authenticator app (QR code or the secret typed in) and proves it with a code.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import urlencode

import django_otp
import segno
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_otp.forms import OTPTokenForm
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard.api.errors import problem


def needs_second_factor(user, session=None) -> bool:
    """True for a staff user who must give a code and has not in this session.

    `session`: for a websocket, where no OTPMiddleware marked the user; the
    verified device is then read from the session as that middleware would.
    """
    if not (user.is_authenticated and user.is_staff):
        return False
    verified = user.is_verified() if session is None else _verified_in(session, user)
    if verified:
        return False
    return settings.STAFF_2FA_REQUIRED or django_otp.user_has_device(user)


def _verified_in(session, user) -> bool:
    persistent_id = session.get(django_otp.DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk and device.confirmed


class StaffTwoFactorMiddleware:
    """After OTPMiddleware: sends an unverified staff session to the code page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if needs_second_factor(request.user) and not self._exempt(request.path):
            if request.path.startswith("/api/"):
                return problem(403, "Forbidden", _("This staff session has not given its "
                                                   "two-factor code; log in again on the "
                                                   "dashboard."))
            page = ("dashboard:two-factor" if django_otp.user_has_device(request.user)
                    else "dashboard:two-factor-setup")
            return redirect(f"{reverse(page)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)

    @staticmethod
    def _exempt(path: str) -> bool:
        # Exact paths: "/logout/" must not also open "/logout/everywhere/", which
        # ends the real person's sessions and revokes their tokens.
        # Choosing the language of the code page itself is open too.
        if path in (reverse("dashboard:two-factor"), reverse("dashboard:two-factor-setup"),
                    reverse("dashboard:logout"), reverse("dashboard:set-language")):
            return True
        return path.startswith("/" + settings.STATIC_URL.lstrip("/"))


def _next(request: HttpRequest) -> str:
    from dashboard.views.auth import _next_url

    return _next_url(request)


@require_http_methods(["GET", "POST"])
@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """The code from the authenticator app; django-otp throttles wrong codes."""
    if not django_otp.user_has_device(request.user):
        return redirect("dashboard:two-factor-setup")
    data = None
    if request.method == "POST":
        # One authenticator per account: name it, so the form verifies (and throttles) it.
        device = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
        data = request.POST.copy()
        data["otp_device"] = device.persistent_id if device else ""
    form = OTPTokenForm(request.user, request, data=data)
    if request.method == "POST" and form.is_valid():
        django_otp.login(request, request.user.otp_device)
        return redirect(_next(request))
    return render(request, "dashboard/two_factor.html", {"form": form, "setup": False})


@require_http_methods(["GET", "POST"])
@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Enrols a TOTP authenticator: shown once, confirmed by its first code."""
    if django_otp.user_has_device(request.user):
        return redirect("dashboard:two-factor")
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name="authenticator",
                                           confirmed=False)
    error = ""
    if request.method == "POST":
        code = request.POST.get("otp_token", "").strip()
        if code.isdigit() and device.verify_token(code):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            django_otp.login(request, device)
            return redirect(_next(request))
        error = _("That code is not right; check the clock of your phone and try again.")
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4, omitsize=False)
    return render(request, "dashboard/two_factor.html", {
        "setup": True,
        "error": error,
        "qr": mark_safe(qr),  # noqa: S308 (segno's own SVG, no user input inside)
        "secret": base64.b32encode(device.bin_key).decode(),
    })
