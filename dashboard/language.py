"""The dashboard's language: the browser's, or the one the person chose.

Django's `LocaleMiddleware` reads the language cookie and then Accept-Language.
A choice made with the header's switcher (`set_language`, a POST to
/i18n/setlang/) sets that cookie and, for a logged-in person, is kept on their
`Preferences` and in their session: a login on another device starts in it
(`restore_on_login`), and `RememberedLanguageMiddleware` lets the session's
choice win over a browser's older cookie. The live feed's websocket renders
its rows in the same language (`for_scope`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from dashboard.models import Preferences

SESSION_KEY = "dashboard_language"


def shipped(code: str | None) -> str | None:
    """`code` when it is one of settings.LANGUAGES (the switcher's choices), else None."""
    if code and code in dict(settings.LANGUAGES):
        return code
    return None


def remember(user: Any, code: str) -> None:
    Preferences.objects.update_or_create(user=user, defaults={"language": code})


def remembered(user: Any) -> str | None:
    """The language `user` chose last on any device; None when they never chose."""
    code = Preferences.objects.filter(user=user).values_list("language", flat=True).first()
    return shipped(code)


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's `set_language` (cookie, redirect to `next`), and for a logged-in
    person their choice kept so it follows them."""
    response = django_set_language(request)
    code = shipped(request.POST.get("language"))
    if code is not None and request.user.is_authenticated:
        remember(request.user, code)
        request.session[SESSION_KEY] = code
    return response


def restore_on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """`user_logged_in` receiver: a new session starts in the person's chosen language."""
    if request is None or not hasattr(request, "session"):
        return
    if (code := remembered(user)) is not None:
        request.session[SESSION_KEY] = code


class RememberedLanguageMiddleware:
    """After LocaleMiddleware: the language chosen for this session (kept at login or by
    the switcher) wins over the browser's cookie and Accept-Language, and the cookie
    is brought in line so pages without a session read the same."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        code = shipped(session.get(SESSION_KEY)) if session is not None else None
        if code is None or code == request.LANGUAGE_CODE:
            return self.get_response(request)
        translation.activate(code)
        request.LANGUAGE_CODE = code
        response = self.get_response(request)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME, code, max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
        return response


def for_scope(scope: Mapping[str, Any]) -> str:
    """The language of a websocket's frames, chosen as for its pages: the session's
    choice, then (as LocaleMiddleware does) the language cookie and Accept-Language."""
    session = scope.get("session")
    code = shipped(session.get(SESSION_KEY)) if session is not None else None
    if code is not None:
        return code
    headers = {name.decode("latin-1").lower(): value.decode("latin-1")
               for name, value in scope.get("headers", [])}
    request = HttpRequest()
    request.META["HTTP_ACCEPT_LANGUAGE"] = headers.get("accept-language", "")
    cookies = SimpleCookie()
    try:
        cookies.load(headers.get("cookie", ""))
    except CookieError:
        pass  # a malformed Cookie header: Accept-Language decides
    request.COOKIES = {name: morsel.value for name, morsel in cookies.items()}
    return translation.get_language_from_request(request)
