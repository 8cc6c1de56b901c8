"""Logging in: Telegram Login Widget, one-time links from the bot, staff accounts.

Telegram's widget check (https://core.telegram.org/widgets/login#checking-authorization):
the data-check-string is every received field except `hash`, as `key=value`
lines sorted by key; the expected hash is HMAC-SHA256 of it keyed with
SHA-256(bot token). On top of that `auth_date` must be recent and a payload
that already logged someone in is refused (replay).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.sessions.backends.base import SessionBase
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from bots import served
from bots.models import BotInstance
from dashboard.models import (
    ApiToken,
    LoginLink,
    LoginSession,
    TelegramAccount,
    TelegramLoginReplay,
    digest,
)

LOGIN_LINK_TTL = timedelta(minutes=5)


class LoginRefused(Exception):
    """The login attempt is not valid; the message is safe to show."""


@dataclasses.dataclass(frozen=True)
class TelegramIdentity:
    telegram_id: int
    first_name: str = ""
    last_name: str = ""
    username: str = ""
    photo_url: str = ""


# --- Telegram Login Widget --------------------------------------------------------


def login_bots() -> QuerySet[BotInstance]:
    """Active bots whose token may sign a Login Widget payload.

    Only bots staff registered (admin, `BOT_TOKEN`: no owner) or a staff member
    added. Whoever holds a token can sign a payload for any Telegram id, and an
    owner who adds their own bot on the dashboard holds its token.
    """
    return BotInstance.objects.filter(is_active=True).filter(
        Q(owner__isnull=True) | Q(owner__is_staff=True)
    )


def widget_hash(data: Mapping[str, str], bot_token: str) -> str:
    check_string = "\n".join(f"{k}={data[k]}" for k in sorted(data) if k != "hash")
    secret = hashlib.sha256(bot_token.encode()).digest()
    return hmac.new(secret, check_string.encode(), hashlib.sha256).hexdigest()


def verify_widget(
    data: Mapping[str, str], bot_tokens: Iterable[str], *, now: datetime | None = None,
    max_age: int | None = None,
) -> TelegramIdentity:
    """Checks signature and freshness; raises LoginRefused with the reason."""
    # Every received field is signed, not only those Nezuko reads (Telegram's spec).
    fields = {k: str(v) for k, v in data.items()}
    received = fields.get("hash", "")
    if not received or "id" not in fields or "auth_date" not in fields:
        raise LoginRefused(_("The Telegram login data is incomplete."))
    if not any(hmac.compare_digest(widget_hash(fields, t), received) for t in bot_tokens):
        raise LoginRefused(_("The Telegram login data is not signed by our bot."))
    try:
        auth_date = datetime.fromtimestamp(int(fields["auth_date"]), tz=UTC)
        telegram_id = int(fields["id"])
    except (ValueError, OverflowError, OSError):
        raise LoginRefused(_("The Telegram login data is malformed.")) from None
    now = now or timezone.now()
    max_age = settings.TELEGRAM_LOGIN_MAX_AGE if max_age is None else max_age
    if now - auth_date > timedelta(seconds=max_age) or auth_date - now > timedelta(minutes=5):
        raise LoginRefused(_("The Telegram login has expired; please log in again."))
    _refuse_replay(received, auth_date)
    return TelegramIdentity(
        telegram_id=telegram_id,
        first_name=fields.get("first_name", ""),
        last_name=fields.get("last_name", ""),
        username=fields.get("username", ""),
        photo_url=fields.get("photo_url", ""),
    )


def _refuse_replay(payload_hash: str, auth_date: datetime) -> None:
    """Records the payload; a second use of the same signed payload is refused."""
    # Payloads older than the window are refused anyway, so their records can go.
    horizon = timezone.now() - timedelta(seconds=settings.TELEGRAM_LOGIN_MAX_AGE + 300)
    TelegramLoginReplay.objects.filter(auth_date__lt=horizon).delete()
    try:
        with transaction.atomic():
            TelegramLoginReplay.objects.create(payload_hash=payload_hash, auth_date=auth_date)
    except IntegrityError:
        raise LoginRefused(
            _("This Telegram login was already used; please log in again.")
        ) from None


# --- One-time links -----------------------------------------------------------------


def create_login_link(identity: TelegramIdentity) -> str:
    """Stores a digest of a new one-time token; returns the token (for the URL)."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    LoginLink.objects.create(
        token_hash=digest(token),
        telegram_id=identity.telegram_id,
        username=identity.username,
        first_name=identity.first_name,
        created_at=now,
        expires_at=now + LOGIN_LINK_TTL,
    )
    return token


def redeem_login_link(token: str) -> TelegramIdentity:
    """Claims the link atomically: valid once, within its five minutes."""
    now = timezone.now()
    claimed = LoginLink.objects.filter(
        token_hash=digest(token or ""), used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if claimed != 1:
        raise LoginRefused(_("This login link is invalid, expired or already used. "
                             "Send /login to the bot for a new one."))
    link = LoginLink.objects.get(token_hash=digest(token))
    return TelegramIdentity(
        telegram_id=link.telegram_id, username=link.username, first_name=link.first_name
    )


def login_url(token: str) -> str:
    """`DASHBOARD_URL`, or the address runbot actually serves (`bots.served`)."""
    return f"{served.dashboard_url()}/login/link/{token}/"


# --- Accounts and sessions ----------------------------------------------------------


def account_for(identity: TelegramIdentity):
    """The Django user linked to this Telegram user, created on first login."""
    User = get_user_model()
    account = TelegramAccount.objects.select_related("user").filter(
        telegram_id=identity.telegram_id
    ).first()
    if account is None:
        user = User(username=_free_username(f"tg{identity.telegram_id}"),
                    first_name=identity.first_name[:150])
        user.set_unusable_password()
        user.save()
        account = TelegramAccount(user=user, telegram_id=identity.telegram_id)
    for field in ("username", "first_name", "last_name", "photo_url"):
        if value := getattr(identity, field):
            setattr(account, field, value)
    account.last_login_at = timezone.now()
    account.save()
    return account.user


def _free_username(base: str) -> str:
    """`base`, or `base-2`, `base-3`…: a leftover user of that name is never taken over
    (staff may have made it, or left it behind when deleting a Telegram account)."""
    taken = set(get_user_model().objects.filter(username__startswith=base)
                .values_list("username", flat=True))
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def start_session(request: HttpRequest, user, method: str) -> None:
    """Django login; `remember_session` records it for "log out everywhere"."""
    request.nezuko_login_method = method
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")


def remember_session(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """`user_logged_in` receiver: every login (dashboard or admin) is recorded."""
    if request is None or not hasattr(request, "session"):
        return
    if request.session.session_key is None:
        request.session.save()
    LoginSession.objects.get_or_create(
        session_key=request.session.session_key,
        defaults={"user": user, "method": getattr(request, "nezuko_login_method", "password")},
    )


def _session_store(session_key: str) -> SessionBase:
    engine = import_module(settings.SESSION_ENGINE)
    return engine.SessionStore(session_key=session_key)


def logout_everywhere(user, *, revoke_tokens: bool = False) -> tuple[int, int]:
    """Ends every session this user logged in with and, when asked, revokes
    every API token too; returns (sessions ended, tokens revoked)."""
    sessions = list(LoginSession.objects.filter(user=user))
    for row in sessions:
        _session_store(row.session_key).delete()
    LoginSession.objects.filter(pk__in=[row.pk for row in sessions]).delete()
    revoked = 0
    if revoke_tokens:
        revoked = ApiToken.objects.active().filter(user=user).update(revoked_at=timezone.now())
    return len(sessions), revoked


# --- Lockout (django-axes) -----------------------------------------------------------


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a 429 with Retry-After for the staff and the admin login.

    The same answer whether the account or the address is locked, and whether
    the password was right, so a lockout tells an attacker nothing.
    """
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request) or timedelta(minutes=15)
    seconds = max(1, int(cool_off.total_seconds()))
    response = render(request, "dashboard/too_many.html",
                      {"retry_after": seconds, "locked_out": True}, status=429)
    response["Retry-After"] = str(seconds)
    return response
