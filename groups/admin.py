from django.contrib import admin
from django.db import models

from bots.admin import AuditedAdmin, staff_actor
from groups.models import EnforcedChannel, GroupAdmin, GroupChannel, GroupMember, ProtectedGroup
from groups.services import members, protection, settings


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

    def save_model(self, request, obj, form, change):
        """Settings and the on/off switch go through their services (audited as
        `group.settings_changed`, `group.enabled`/`group.disabled`); the other
        fields are an ordinary audited change."""
        if not change:
            return super().save_model(request, obj, form, change)
        stored = ProtectedGroup.objects.get(pk=obj.pk)
        changes = {f: getattr(obj, f) for f in settings.SETTING_FIELDS if f in form.changed_data}
        enabled = obj.enabled
        for field in [*changes, "enabled"]:
            setattr(obj, field, getattr(stored, field))
        if set(form.changed_data) - {*changes, "enabled"}:
            super().save_model(request, obj, form, change)
        actor = staff_actor(request)
        settings.update_settings(obj.pk, changes, actor=actor)
        protection.set_group_enabled(obj.pk, enabled, actor=actor)
        obj.refresh_from_db()

    @admin.action(description="Enable protection")
    def enable_protection(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            protection.set_group_enabled(pk, True, actor=staff_actor(request))
        self.message_user(request, f"Protection enabled in {len(queryset)} group(s).")

    @admin.action(description="Disable protection")
    def disable_protection(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            protection.set_group_enabled(pk, False, actor=staff_actor(request))
        self.message_user(request, f"Protection disabled in {len(queryset)} group(s).")


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
    actions = ["unmute", "ban"]

    def audit_group_id(self, obj):
        return obj.group_id

    @admin.action(description="Unmute selected members (runbot carries it out)")
    def unmute(self, request, queryset):
        for group_pk, user_id in queryset.values_list("group_id", "user_id"):
            members.unmute(group_pk, user_id, actor=staff_actor(request))
        self.message_user(request, f"Queued {len(queryset)} unmute(s).")

    @admin.action(description="Ban selected members (runbot carries it out)")
    def ban(self, request, queryset):
        for group_pk, user_id in queryset.values_list("group_id", "user_id"):
            members.ban(group_pk, user_id, actor=staff_actor(request))
        self.message_user(request, f"Queued {len(queryset)} ban(s).")


@admin.register(GroupAdmin)
class GroupAdminAdmin(admin.ModelAdmin):
    list_display = ["user_id", "username", "group", "is_creator", "is_anonymous",
                    "can_restrict_members", "refreshed_at"]
    list_filter = ["is_creator", "is_anonymous"]
    search_fields = ["=user_id", "username", "group__title"]
    raw_id_fields = ["group"]
    list_select_related = ["group"]
