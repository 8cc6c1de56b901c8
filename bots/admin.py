from django import forms
from django.contrib import admin
from django.db import transaction

from bots import audit, registration
from bots.models import AuditLog, BotCommand, BotInstance, BotStatus


class AuditedAdmin(admin.ModelAdmin):
    """Writes an AuditLog row for every add, change and delete made in admin."""

    def audit_group_id(self, obj) -> int | None:
        return None

    def save_model(self, request, obj, form, change):
        before = None
        if change and obj.pk:
            before = audit.snapshot(type(obj).objects.get(pk=obj.pk))
        super().save_model(request, obj, form, change)
        audit.record(
            "change" if change else "add",
            obj,
            source=AuditLog.Source.ADMIN,
            actor=request.user,
            before=before or {},
            after=audit.snapshot(obj),
            group_id=self.audit_group_id(obj),
        )

    def delete_model(self, request, obj):
        audit.record(
            "delete",
            obj,
            source=AuditLog.Source.ADMIN,
            actor=request.user,
            before=audit.snapshot(obj),
            group_id=self.audit_group_id(obj),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit.record(
                "delete",
                obj,
                source=AuditLog.Source.ADMIN,
                actor=request.user,
                before=audit.snapshot(obj),
                group_id=self.audit_group_id(obj),
            )
        super().delete_queryset(request, queryset)

    def audited_update(self, request, queryset, action: str, **changes) -> int:
        """Bulk action that records one audit row per object it changes."""
        with transaction.atomic():
            count = 0
            # Lock plain rows: changelist querysets may carry annotations
            # (GROUP BY), which PostgreSQL refuses to lock.
            pks = list(queryset.values_list("pk", flat=True))
            for obj in queryset.model._default_manager.select_for_update().filter(pk__in=pks):
                before = audit.snapshot(obj, fields=list(changes))
                for field, value in changes.items():
                    setattr(obj, field, value)
                obj.save(update_fields=[*changes, *self._auto_now_fields(obj)])
                audit.record(
                    action,
                    obj,
                    source=AuditLog.Source.ADMIN,
                    actor=request.user,
                    before=before,
                    after=audit.snapshot(obj, fields=list(changes)),
                    group_id=self.audit_group_id(obj),
                )
                count += 1
        return count

    @staticmethod
    def _auto_now_fields(obj) -> list[str]:
        return [f.name for f in obj._meta.concrete_fields if getattr(f, "auto_now", False)]


class BotInstanceForm(forms.ModelForm):
    """The token is write-only: entered once, stored encrypted, never rendered."""

    token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="From @BotFather. Stored encrypted and never shown again. "
        "Leave empty to keep the current token.",
    )

    class Meta:
        model = BotInstance
        fields = ["token", "username", "display_name", "is_active", "owner"]

    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        if not token and not self.instance.pk:
            raise forms.ValidationError("A token is required to add a bot.")
        return token

    def clean(self) -> dict:
        cleaned = super().clean()
        token = cleaned.get("token")
        if token:
            # The one way in (bots.registration): shape, duplicates, getMe. The
            # ModelForm saves the instance; Telegram's names win over typed ones.
            try:
                bot = registration.register_bot(token, bot=self.instance, commit=False)
            except registration.TokenRejected as exc:
                self.add_error("token", str(exc))
            else:
                cleaned["username"], cleaned["display_name"] = bot.username, bot.display_name
        return cleaned


class BotStatusInline(admin.StackedInline):
    model = BotStatus
    can_delete = False
    readonly_fields = [f.name for f in BotStatus._meta.fields if f.name not in ("id", "bot")]
    fields = readonly_fields
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(BotInstance)
class BotInstanceAdmin(AuditedAdmin):
    form = BotInstanceForm
    list_display = ["__str__", "telegram_id", "display_name", "is_active", "update_mode",
                    "state", "heartbeat", "created_at"]
    list_filter = ["is_active", "update_mode", "status__state"]
    search_fields = ["username", "display_name", "=telegram_id"]
    readonly_fields = ["telegram_id", "update_mode", "created_at", "updated_at"]
    inlines = [BotStatusInline]
    actions = ["activate", "deactivate"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("status")

    @admin.display(description="state", ordering="status__state")
    def state(self, obj):
        status = getattr(obj, "status", None)
        return status.state if status else "never run"

    @admin.display(description="last heartbeat", ordering="status__heartbeat_at")
    def heartbeat(self, obj):
        status = getattr(obj, "status", None)
        return status.heartbeat_at if status else None

    @admin.action(description="Activate selected bots")
    def activate(self, request, queryset):
        count = self.audited_update(request, queryset, "activate", is_active=True)
        self.message_user(request, f"Activated {count} bot(s).")

    @admin.action(description="Deactivate selected bots")
    def deactivate(self, request, queryset):
        count = self.audited_update(request, queryset, "deactivate", is_active=False)
        self.message_user(request, f"Deactivated {count} bot(s).")


@admin.register(BotCommand)
class BotCommandAdmin(AuditedAdmin):
    list_display = ["pk", "kind", "bot", "status", "requested_by", "created_at", "finished_at"]
    list_filter = ["status", "kind", "bot"]
    search_fields = ["error", "=pk"]
    date_hierarchy = "created_at"
    readonly_fields = ["status", "result", "error", "started_at", "finished_at", "created_at"]
    raw_id_fields = ["requested_by"]
    actions = ["queue_again"]

    @admin.action(description="Queue selected commands again")
    def queue_again(self, request, queryset):
        """A failed command (or one a dead runbot left) is retried as a new command,
        so the record of the first attempt stays as it was. Pending and running
        commands are skipped: a copy of one still running could act twice."""
        retried = 0
        unfinished = [BotCommand.Status.PENDING, BotCommand.Status.RUNNING]
        for command in queryset.exclude(status__in=unfinished):
            copy = BotCommand.objects.create(
                bot_id=command.bot_id, kind=command.kind, payload=command.payload,
                requested_by=request.user,
            )
            audit.record("queue_again", copy, source=AuditLog.Source.ADMIN, actor=request.user,
                         after={"retry_of": command.pk, "kind": command.kind})
            retried += 1
        self.message_user(request, f"Queued {retried} command(s) again.")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "source", "actor_name", "action", "object_type", "object_repr"]
    list_filter = ["source", "action", "object_type"]
    search_fields = ["actor_name", "object_repr", "action", "=object_id", "=actor_telegram_id"]
    date_hierarchy = "created_at"

    # The audit trail is append-only, also for staff.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
