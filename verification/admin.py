from django.contrib import admin

from verification.models import PendingJoinRequest, VerificationEvent


@admin.register(VerificationEvent)
class VerificationEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "outcome", "group", "user_id", "user_name", "latency_ms",
                    "cache_hit", "bot"]
    list_filter = ["outcome", "cache_hit"]
    search_fields = ["=user_id", "user_name", "=chat_id", "group__title"]
    date_hierarchy = "created_at"
    raw_id_fields = ["group", "bot"]
    list_select_related = ["group", "bot"]
    # Tens of millions of rows: an exact count on every page load is too slow.
    show_full_result_count = False

    # Events are a record of what happened; staff read them, they don't edit them.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PendingJoinRequest)
class PendingJoinRequestAdmin(admin.ModelAdmin):
    list_display = ["user_id", "user_name", "group", "created_at", "expires_at"]
    search_fields = ["=user_id", "user_name", "group__title"]
    date_hierarchy = "created_at"
    raw_id_fields = ["group", "bot"]
    list_select_related = ["group"]

    # runbot creates these and answers them; staff may delete one to drop it.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
