from django.contrib import admin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy, ngettext

from bots.admin import AuditedAdmin
from bots.audit import AuditAction
from dashboard.models import ApiToken, LoginSession, TelegramAccount


@admin.register(TelegramAccount)
class TelegramAccountAdmin(AuditedAdmin):
    list_display = ["telegram_id", "username", "first_name", "user", "created_at",
                    "last_login_at"]
    search_fields = ["=telegram_id", "username", "first_name", "user__username"]
    readonly_fields = ["telegram_id", "created_at", "last_login_at"]
    raw_id_fields = ["user"]
    list_select_related = ["user"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    """Tokens are issued by their owners on the dashboard; staff can only revoke."""

    list_display = ["name", "hint", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username"]
    # The digest stays out of every page, though it is only a digest.
    exclude = ["token_hash"]
    readonly_fields = ["user", "hint", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=gettext_lazy("Revoke selected tokens"))
    def revoke(self, request, queryset):
        count = self.audited_update(
            request, queryset.filter(revoked_at__isnull=True), AuditAction.API_TOKEN_REVOKED,
            revoked_at=timezone.now()
        )
        self.message_user(request, ngettext("Revoked %(count)s token.", "Revoked %(count)s tokens.",
                                            count) % {"count": count})


@admin.register(LoginSession)
class LoginSessionAdmin(admin.ModelAdmin):
    list_display = ["user", "method", "created_at"]
    list_filter = ["method"]
    search_fields = ["user__username"]
    # The session key would let anyone who sees it take the session over.
    exclude = ["session_key"]
    readonly_fields = ["user", "method", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
