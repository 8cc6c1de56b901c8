"""Login pages: Telegram widget callback, one-time links, staff accounts, logout."""

from __future__ import annotations

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bots.models import BotInstance
from dashboard import auth
from dashboard.models import ApiToken
from dashboard.throttling import per_address


def _login_bot() -> BotInstance | None:
    return auth.login_bots().order_by("pk").first()


def _render_login(request: HttpRequest, form: AuthenticationForm | None = None,
                  error: str = "", status: int = 200) -> HttpResponse:
    bot = _login_bot()
    return render(request, "dashboard/login.html", {
        "form": form or AuthenticationForm(request),
        "error": error,
        "login_bot": bot,
        "widget_callback": request.build_absolute_uri("/login/telegram/"),
    }, status=status)


@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    """Staff log in with a Django account here; owners use Telegram."""
    if request.user.is_authenticated:
        return redirect("dashboard:overview")
    if request.method == "POST":
        form = AuthenticationForm(request, data=request.POST)
        if form.is_valid():
            auth.start_session(request, form.get_user(), "password")
            return redirect(_next_url(request))
        return _render_login(request, form, status=200)
    return _render_login(request)


@require_GET
@per_address
def telegram_callback(request: HttpRequest) -> HttpResponse:
    """The Login Widget's data-auth-url: signed fields in the query string."""
    tokens = [bot.token for bot in auth.login_bots()]
    try:
        identity = auth.verify_widget(request.GET, tokens)
    except auth.LoginRefused as exc:
        return _render_login(request, error=str(exc), status=403)
    auth.start_session(request, auth.account_for(identity), "telegram")
    return redirect("dashboard:overview")


@require_http_methods(["GET", "POST"])
@per_address
def login_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; POST redeems. Link previews fetch with GET, so they
    cannot use up the one-time link before its owner clicks it."""
    if request.method == "GET":
        return render(request, "dashboard/login_link.html", {"token": token})
    try:
        identity = auth.redeem_login_link(token)
    except auth.LoginRefused as exc:
        return _render_login(request, error=str(exc), status=403)
    auth.start_session(request, auth.account_for(identity), "link")
    return redirect("dashboard:overview")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("dashboard:login")


@require_http_methods(["GET", "POST"])
@login_required
def logout_everywhere_view(request: HttpRequest) -> HttpResponse:
    """GET asks whether API tokens go too; POST ends every session (and them)."""
    if request.method == "GET":
        tokens = ApiToken.objects.active().filter(user=request.user).count()
        return render(request, "dashboard/logout_everywhere.html", {"active_tokens": tokens})
    auth.logout_everywhere(request.user, revoke_tokens=request.POST.get("revoke_tokens") == "on")
    logout(request)
    return redirect("dashboard:login")


def _next_url(request: HttpRequest) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"
