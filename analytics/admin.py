from django.contrib import admin

from analytics.models import ApiCallHourly, ApiCallRollup, DecisionRollup, Rollup


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DecisionRollup)
class DecisionRollupAdmin(ReadOnlyAdmin):
    list_display = ["minute", "group", "outcome", "count", "cache_hits", "cache_misses"]
    list_filter = ["outcome"]
    search_fields = ["group__title"]
    date_hierarchy = "minute"
    list_select_related = ["group"]


@admin.register(ApiCallRollup)
class ApiCallRollupAdmin(ReadOnlyAdmin):
    list_display = ["minute", "bot", "method", "outcome", "count", "latency_sum_ms"]
    list_filter = ["method", "outcome"]
    search_fields = ["method"]
    date_hierarchy = "minute"
    list_select_related = ["bot"]


@admin.register(Rollup)
class RollupAdmin(ReadOnlyAdmin):
    list_display = ["bucket", "span", "group_id", "outcome", "count", "cache_hits", "cache_misses"]
    list_filter = ["span", "outcome"]
    search_fields = ["=group_id"]
    date_hierarchy = "bucket"


@admin.register(ApiCallHourly)
class ApiCallHourlyAdmin(ReadOnlyAdmin):
    list_display = ["hour", "bot_id", "method", "outcome", "count", "latency_sum_ms"]
    list_filter = ["method", "outcome"]
    search_fields = ["method"]
    date_hierarchy = "hour"
