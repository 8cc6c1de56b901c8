"""Who a dashboard user is in Telegram, how they log in, and their API tokens.

Nothing secret is stored in the clear: login links and API tokens are kept as
SHA-256 digests, so a database dump lets nobody log in.
"""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TelegramAccount(models.Model):
    """Links a Django user to the Telegram user who logged in as them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="telegram"
    )
    telegram_id = models.BigIntegerField(unique=True)
    username = models.CharField(max_length=64, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    photo_url = models.URLField(blank=True, max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"@{self.username}" if self.username else f"{self.first_name} ({self.telegram_id})"


class TelegramLoginReplay(models.Model):
    """Login Widget payloads already used: the same signed payload works once."""

    payload_hash = models.CharField(max_length=64, unique=True)
    auth_date = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.payload_hash[:12]


class LoginLink(models.Model):
    """A one-time link the bot sends in a private chat (`/login`)."""

    token_hash = models.CharField(max_length=64, unique=True)
    telegram_id = models.BigIntegerField()
    username = models.CharField(max_length=64, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"login link for {self.telegram_id}"


class LoginSession(models.Model):
    """Every session a user logged in with, so "log out everywhere" can end them all."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="login_sessions"
    )
    session_key = models.CharField(max_length=64, unique=True)
    method = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} via {self.method}"


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A personal API token: shown once when created, stored as a digest."""

    PREFIX = "nzk_"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters, so a user can tell their tokens apart.
    hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        """Creates a token; returns the row and the plaintext (never stored)."""
        plaintext = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, token_hash=digest(plaintext), hint=plaintext[:10]
        )
        return token, plaintext


class Preferences(models.Model):
    """What a dashboard user chose for themselves, kept so it follows them to every
    device they log in on (the cookie only remembers one browser)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboard_preferences"
    )
    # A code of settings.LANGUAGES, or "" to follow the browser.
    language = models.CharField(max_length=8, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of {self.user}"
