"""Telegram plumbing: bot identities, their heartbeat, the command queue, the audit log.

AuditLog lives here because `bots` is the bottom of the dependency chain:
every other app (and admin) can record into it without pointing upwards.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from bots import crypto


class BotInstance(models.Model):
    class UpdateMode(models.TextChoices):
        POLLING = "polling", "Long polling"
        WEBHOOK = "webhook", "Webhook"

    telegram_id = models.BigIntegerField(
        unique=True, help_text="The bot's Telegram user id (the token's first part)."
    )
    username = models.CharField(max_length=64, blank=True)
    display_name = models.CharField(max_length=128, blank=True)
    # Fernet ciphertext; the plaintext never leaves `token`.
    encrypted_token = models.TextField(editable=False)
    token_fingerprint = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(default=True, db_index=True)
    update_mode = models.CharField(
        max_length=16,
        choices=UpdateMode.choices,
        default=UpdateMode.POLLING,
        editable=False,
        help_text="How runbot receives this bot's updates: webhook when WEBHOOK_URL is set.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bots",
        help_text="Dashboard user who added the bot, if any.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["username", "pk"]
        verbose_name = "bot"

    def __str__(self) -> str:
        return f"@{self.username}" if self.username else f"bot {self.telegram_id}"

    def __repr__(self) -> str:
        # The default repr is fine, but say it: no token in here, ever.
        return f"<BotInstance pk={self.pk} telegram_id={self.telegram_id} @{self.username}>"

    @property
    def token(self) -> str:
        """The plaintext token. Raises TokenDecryptError naming this bot."""
        try:
            return crypto.decrypt(self.encrypted_token)
        except crypto.TokenDecryptError as exc:
            raise crypto.TokenDecryptError(f"Cannot decrypt the token of {self}: {exc}") from exc

    def set_token(self, token: str) -> None:
        token = token.strip()
        if not crypto.is_token_format(token):
            raise ValueError("This does not look like a Telegram bot token (123456:ABC-...).")
        self.encrypted_token = crypto.encrypt(token)
        self.token_fingerprint = crypto.token_fingerprint(token)
        self.telegram_id = crypto.bot_id_from_token(token)


class BotStatus(models.Model):
    """The heartbeat runbot writes for each bot it runs."""

    class State(models.TextChoices):
        STARTING = "starting"
        RUNNING = "running"
        STOPPED = "stopped"
        FAILED = "failed"

    bot = models.OneToOneField(BotInstance, on_delete=models.CASCADE, related_name="status")
    state = models.CharField(max_length=16, choices=State.choices, default=State.STOPPED)
    host = models.CharField(max_length=255, blank=True, help_text="hostname:pid of the runner")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    updates_handled = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "bot status"
        verbose_name_plural = "bot statuses"

    def __str__(self) -> str:
        return f"{self.bot}: {self.state}"

    def is_fresh(self, max_age_seconds: int = 90) -> bool:
        if self.heartbeat_at is None:
            return False
        return (timezone.now() - self.heartbeat_at).total_seconds() <= max_age_seconds


class BotCommand(models.Model):
    """Work the dashboard asks a running bot to do (unmute, ban, ...).

    runbot claims a row atomically (PENDING -> RUNNING) so it runs once even
    with several runbot processes.
    """

    class Kind(models.TextChoices):
        UNMUTE = "unmute"
        BAN = "ban"
        UNBAN = "unban"
        RECHECK = "recheck", "Re-check a user"
        REFRESH_ADMINS = "refresh_admins", "Refresh group admins"
        WARM_CACHE = "warm_cache", "Warm membership cache"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    bot = models.ForeignKey(BotInstance, on_delete=models.CASCADE, related_name="commands")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["bot", "status", "created_at"], name="botcommand_queue")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class AuditLog(models.Model):
    """Every change made in the dashboard, in admin, or by a Telegram command."""

    class Source(models.TextChoices):
        ADMIN = "admin"
        DASHBOARD = "dashboard"
        API = "api"
        TELEGRAM = "telegram", "Telegram command"
        SYSTEM = "system"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Telegram actors have no Django account; keep who they were.
    actor_telegram_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=255, blank=True)
    # Group the change belongs to, for tenancy filtering on the dashboard.
    group_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_repr}".strip()


class TelegramUser(models.Model):
    """A person a bot has talked to: the directory of issue 16 (docs/people.md).

    Rows are written off the hot path in bulk by `bots.people.PeopleWriter`,
    never per update. Personal data (names, username, language, referral) is
    blanked for people not seen for NEZUKO_PEOPLE_RETENTION_DAYS, and the whole
    row goes when the person sends /forget.

    The referral is either an owner (a dashboard user) or a group. The group is
    a plain ProtectedGroup pk, not a foreign key: `bots` sits below `groups` and
    never points up (docs/people.md says how the dashboard joins it).
    """

    telegram_id = models.BigIntegerField(unique=True)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    username = models.CharField(max_length=64, blank=True)
    language_code = models.CharField(max_length=16, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    referred_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referred_people",
        help_text="The owner whose referral link brought this person.",
    )
    referred_by_group_id = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The ProtectedGroup (pk) whose referral link brought this person.",
    )
    referred_at = models.DateTimeField(
        null=True, blank=True, help_text="When the first valid referral was recorded (set once)."
    )

    class Meta:
        ordering = ["-last_seen", "pk"]
        verbose_name = "Telegram user"
        indexes = [
            # Pruning ("not seen since") and the newest-first listings.
            models.Index(fields=["last_seen"], name="telegramuser_last_seen"),
            models.Index(fields=["referred_by_group_id"], name="telegramuser_ref_group"),
        ]

    def __str__(self) -> str:
        if self.username:
            return f"@{self.username}"
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name} ({self.telegram_id})" if name else str(self.telegram_id)

    @property
    def is_referred(self) -> bool:
        return self.referred_at is not None


class ForgottenPerson(models.Model):
    """A person who asked to be forgotten (/forget), and when.

    Another runbot process may still hold a sighting of them taken before that
    (in memory, or spooled through an outage): `bots.people` writes no sighting
    older than this, so none brings them back. Only the id and the moment stay.
    """

    telegram_id = models.BigIntegerField(unique=True)
    forgotten_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.telegram_id} forgotten at {self.forgotten_at:%Y-%m-%d %H:%M}"


class BotUser(models.Model):
    """One person as seen by one bot: started it, blocked it, opted out of broadcasts."""

    bot = models.ForeignKey(BotInstance, on_delete=models.CASCADE, related_name="people")
    user = models.ForeignKey(TelegramUser, on_delete=models.CASCADE, related_name="per_bot")
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="First /start in a private chat with this bot."
    )
    blocked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the person blocked the bot (a 403 or my_chat_member kicked); "
        "cleared when they unblock it.",
    )
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    broadcast_opt_out = models.BooleanField(default=False)

    class Meta:
        verbose_name = "bot user"
        constraints = [
            models.UniqueConstraint(fields=["bot", "user"], name="unique_botuser"),
        ]
        indexes = [
            # /broadcast reads "started, not blocked, not opted out" per bot.
            models.Index(fields=["bot", "blocked_at"], name="botuser_bot_blocked"),
        ]

    def __str__(self) -> str:
        return f"{self.user} via {self.bot}"
