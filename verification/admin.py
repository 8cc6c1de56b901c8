from django.contrib import admin

from verification.models import Broadcast, Delivery, PendingJoinRequest, VerificationEvent


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


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ["user_id", "status", "attempts", "error", "updated_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    list_display = ["created_at", "bot", "audience", "state", "sent_by", "finished_at"]
    list_filter = ["state", "audience"]
    search_fields = ["text", "=sent_by"]
    date_hierarchy = "created_at"
    raw_id_fields = ["bot"]
    list_select_related = ["bot"]
    readonly_fields = ["bot", "audience", "text", "sent_by", "state", "created_at",
                       "finished_at"]
    inlines = [DeliveryInline]

    # Sent with /broadcast in Telegram (preview, confirmation, audit row); staff read
    # them here and follow their progress on the dashboard's Broadcasts page.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
