from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import Exists, OuterRef

from bots import audit, registration
from bots.audit import Actor, AuditAction
from bots.models import AuditLog, BotCommand, BotInstance, BotStatus, BotUser, TelegramUser


def staff_actor(request) -> Actor:
    """Staff in admin, as the domain services see them: allowed everything, named by username."""
    return Actor(AuditLog.Source.ADMIN, name=request.user.get_username(), user=request.user,
                 staff=True)


class AuditedAdmin(admin.ModelAdmin):
    """Writes an AuditLog row for every add, change and delete made in admin.

    Domain changes (enable a group, ban a member, a bot's token) do not come
    through here: their actions and forms call the services, which audit them
    with their own names.
    """

    def audit_group_id(self, obj) -> int | None:
        return None

    def save_model(self, request, obj, form, change):
        before = None
        if change and obj.pk:
            before = audit.snapshot(type(obj).objects.get(pk=obj.pk))
        super().save_model(request, obj, form, change)
        audit.record(
            AuditAction.RECORD_CHANGED if change else AuditAction.RECORD_ADDED,
            obj,
            source=AuditLog.Source.ADMIN,
            actor=request.user,
            before=before or {},
            after=audit.snapshot(obj),
            group_id=self.audit_group_id(obj),
        )

    def delete_model(self, request, obj):
        audit.record(
            AuditAction.RECORD_DELETED,
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
                AuditAction.RECORD_DELETED,
                obj,
                source=AuditLog.Source.ADMIN,
                actor=request.user,
                before=audit.snapshot(obj),
                group_id=self.audit_group_id(obj),
            )
        super().delete_queryset(request, queryset)

    def audited_update(self, request, queryset, action: AuditAction, **changes) -> int:
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

    def save_model(self, request, obj, form, change):
        """A token entered here is registered by `bots.registration` (audited as
        `bot.registered` / `bot.retokened`); other fields are an ordinary change."""
        if not form.cleaned_data.get("token"):
            return super().save_model(request, obj, form, change)
        others = set(form.changed_data) - {"token", "username", "display_name"}
        if change and others:
            before = audit.snapshot(BotInstance.objects.get(pk=obj.pk), fields=sorted(others))
        registration.store(obj, actor=staff_actor(request))
        if change and others:
            audit.record(AuditAction.RECORD_CHANGED, obj, by=staff_actor(request),
                         before=before, after=audit.snapshot(obj, fields=sorted(others)))

    @admin.action(description="Activate selected bots")
    def activate(self, request, queryset):
        for bot in queryset:
            registration.set_bot_active(bot.pk, True, actor=staff_actor(request))
        self.message_user(request, f"Activated {len(queryset)} bot(s).")

    @admin.action(description="Deactivate selected bots")
    def deactivate(self, request, queryset):
        for bot in queryset:
            registration.set_bot_active(bot.pk, False, actor=staff_actor(request))
        self.message_user(request, f"Deactivated {len(queryset)} bot(s).")


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
            audit.record(AuditAction.COMMAND_QUEUED_AGAIN, copy, by=staff_actor(request),
                         after={"retry_of": command.pk, "kind": command.kind})
            retried += 1
        self.message_user(request, f"Queued {retried} command(s) again.")


class ActionFilter(admin.SimpleListFilter):
    """The vocabulary's labels, not the stored names."""

    title = "what"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return AuditAction.choices

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "source", "who", "what", "object_type", "object_repr"]
    list_filter = ["source", ActionFilter, "object_type"]
    list_select_related = ["actor__telegram"]
    search_fields = ["actor_name", "object_repr", "action", "=object_id", "=actor_telegram_id"]
    date_hierarchy = "created_at"

    @admin.display(description="who", ordering="actor_name")
    def who(self, obj):
        return audit.actor_label(obj)

    @admin.display(description="what", ordering="action")
    def what(self, obj):
        return audit.action_label(obj.action)

    # The audit trail is append-only, also for staff.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BlockedFilter(admin.SimpleListFilter):
    """Whether the person has blocked at least one bot right now."""

    title = "blocked a bot"
    parameter_name = "blocked"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        blocked = BotUser.objects.filter(user=OuterRef("pk"), blocked_at__isnull=False)
        if self.value() == "yes":
            return queryset.filter(Exists(blocked))
        if self.value() == "no":
            return queryset.exclude(Exists(blocked))
        return queryset


class ReferredFilter(admin.SimpleListFilter):
    title = "referred"
    parameter_name = "referred"

    def lookups(self, request, model_admin):
        return [("owner", "By an owner"), ("group", "By a group"), ("no", "Not referred")]

    def queryset(self, request, queryset):
        if self.value() == "owner":
            return queryset.filter(referred_by_user__isnull=False)
        if self.value() == "group":
            return queryset.filter(referred_by_group_id__isnull=False)
        if self.value() == "no":
            return queryset.filter(referred_at__isnull=True)
        return queryset


class BotUserInline(admin.TabularInline):
    model = BotUser
    fields = ["bot", "started_at", "blocked_at", "broadcast_opt_out", "first_seen", "last_seen"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TelegramUser)
class TelegramUserAdmin(admin.ModelAdmin):
    """The people directory (docs/people.md), read-only: the bots write it, a person
    erases themselves with /forget, and retention prunes it. A delete from here would
    copy the person's names into the audit trail, so there is none."""

    list_display = ["telegram_id", "username", "first_name", "last_name", "language_code",
                    "first_seen", "last_seen", "referred_at"]
    list_filter = ["language_code", BlockedFilter, ReferredFilter]
    search_fields = ["=telegram_id", "username", "first_name", "last_name"]
    date_hierarchy = "last_seen"
    readonly_fields = ["telegram_id", "first_name", "last_name", "username", "language_code",
                       "first_seen", "last_seen", "referred_by_user", "referred_by_group_id",
                       "referred_at"]
    inlines = [BotUserInline]
    list_select_related = ["referred_by_user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
