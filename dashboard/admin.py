"""Staff manage dashboard accounts here; secrets exist only as digests."""

from django.contrib import admin
from django.utils import timezone

from dashboard.models import ApiToken, LoginSession, TelegramAccount


@admin.register(TelegramAccount)
class TelegramAccountAdmin(admin.ModelAdmin):
    list_display = ["telegram_id", "username", "first_name", "user", "last_login_at"]
    search_fields = ["telegram_id", "username", "first_name", "user__username"]
    readonly_fields = ["created_at", "last_login_at"]
    list_select_related = ["user"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "hint", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "hint"]
    # Tokens are created by their owners on the dashboard; staff can only revoke.
    fields = ["name", "user", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]
    list_select_related = ["user"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(LoginSession)
class LoginSessionAdmin(admin.ModelAdmin):
    list_display = ["user", "method", "created_at"]
    list_filter = ["method"]
    search_fields = ["user__username"]
    readonly_fields = ["user", "session_key", "method", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False
