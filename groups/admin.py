from django.contrib import admin
from django.db import models

from bots.admin import AuditedAdmin
from groups.models import EnforcedChannel, GroupAdmin, GroupChannel, GroupMember, ProtectedGroup


class GroupChannelInline(admin.TabularInline):
    model = GroupChannel
    extra = 0
    autocomplete_fields = ["channel"]


@admin.register(ProtectedGroup)
class ProtectedGroupAdmin(AuditedAdmin):
    list_display = ["__str__", "chat_id", "bot", "enabled", "action", "fail_mode",
                    "channel_count", "needs_attention", "updated_at"]
    list_filter = ["enabled", "needs_attention", "action", "fail_mode", "bot"]
    search_fields = ["title", "username", "=chat_id", "setup_by_name"]
    readonly_fields = ["bot_status", "bot_rights", "admins_refreshed_at", "created_at",
                       "updated_at"]
    inlines = [GroupChannelInline]
    actions = ["enable_protection", "disable_protection"]
    list_select_related = ["bot"]

    def audit_group_id(self, obj):
        return obj.pk

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_channels=Count("links"))

    @admin.display(description="channels", ordering="_channels")
    def channel_count(self, obj):
        return obj._channels

    @admin.action(description="Enable protection")
    def enable_protection(self, request, queryset):
        count = self.audited_update(request, queryset, "enable", enabled=True)
        self.message_user(request, f"Protection enabled in {count} group(s).")

    @admin.action(description="Disable protection")
    def disable_protection(self, request, queryset):
        count = self.audited_update(request, queryset, "disable", enabled=False)
        self.message_user(request, f"Protection disabled in {count} group(s).")


@admin.register(EnforcedChannel)
class EnforcedChannelAdmin(AuditedAdmin):
    list_display = ["__str__", "chat_id", "username", "bot", "bot_is_admin", "created_at"]
    list_filter = ["bot_is_admin", "bot"]
    search_fields = ["title", "username", "=chat_id"]
    list_select_related = ["bot"]
    # Invite links are https; say so rather than rely on Django 5's http default.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(GroupMember)
class GroupMemberAdmin(AuditedAdmin):
    list_display = ["user_id", "username", "first_name", "group", "status",
                    "restricted_by_nezuko", "restricted_at", "last_seen_at"]
    list_filter = ["status", "restricted_by_nezuko"]
    search_fields = ["=user_id", "username", "first_name", "group__title"]
    raw_id_fields = ["group"]
    list_select_related = ["group"]

    def audit_group_id(self, obj):
        return obj.group_id


@admin.register(GroupAdmin)
class GroupAdminAdmin(admin.ModelAdmin):
    list_display = ["user_id", "username", "group", "is_creator", "is_anonymous",
                    "can_restrict_members", "refreshed_at"]
    list_filter = ["is_creator", "is_anonymous"]
    search_fields = ["=user_id", "username", "group__title"]
    raw_id_fields = ["group"]
    list_select_related = ["group"]
