"""What the engine records: one row per enforcement event."""

from django.db import models
from django.utils import timezone

from bots.models import BotInstance
from groups.models import ProtectedGroup


class Outcome(models.TextChoices):
    RESTRICTED = "restricted"
    UNMUTED = "unmuted"
    VERIFIED = "verified", "Verified (already subscribed)"
    KICKED = "kicked"
    DELETED = "deleted", "Message deleted"
    JOIN_APPROVED = "join_approved", "Join request approved"
    JOIN_DECLINED = "join_declined", "Join request declined"
    ERROR = "error"
    # Observe mode: what enforcement would have done (nothing was deleted, muted or sent).
    WOULD_RESTRICT = "would_restrict", "Would have restricted"


class VerificationEventQuerySet(models.QuerySet):
    def for_groups(self, group_ids):
        return self.filter(group_id__in=group_ids)

    def latest(self, limit: int = 50):
        return self.order_by("-created_at", "-pk")[:limit]


class VerificationEvent(models.Model):
    created_at = models.DateTimeField(default=timezone.now)
    bot = models.ForeignKey(BotInstance, null=True, on_delete=models.SET_NULL, related_name="+")
    group = models.ForeignKey(
        ProtectedGroup, null=True, on_delete=models.CASCADE, related_name="events"
    )
    chat_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    user_name = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    # Channel chat ids the user was missing when the decision was made.
    missing_channel_ids = models.JSONField(default=list, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    cache_hit = models.BooleanField(null=True)
    detail = models.CharField(max_length=255, blank=True)

    objects = VerificationEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # Latest events of these groups; counts per group over a time range.
            models.Index(fields=["group", "-created_at"], name="event_group_time"),
            # Global time range scans and batched pruning.
            models.Index(fields=["created_at"], name="event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} user {self.user_id} in {self.chat_id}"


class PendingJoinRequest(models.Model):
    """A join request Nezuko answered with "join these channels first".

    Approved when the user complies (channel join or button), declined by
    runbot's sweep at `expires_at`.
    """

    bot = models.ForeignKey(BotInstance, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(
        ProtectedGroup, on_delete=models.CASCADE, related_name="pending_join_requests"
    )
    user_id = models.BigIntegerField()
    user_chat_id = models.BigIntegerField()
    user_name = models.CharField(max_length=255, blank=True)
    # The private message with the buttons, so it can be updated once they are in.
    message_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "user_id"], name="unique_join_request"),
        ]
        indexes = [models.Index(fields=["user_id"], name="joinrequest_user")]

    def __str__(self) -> str:
        return f"join request of {self.user_id} to {self.group}"


class Broadcast(models.Model):
    """A message a superadmin sent through one bot to many people (/broadcast).

    A draft until its sender confirms the preview; then its deliveries are
    written, one row per recipient, and the bot's sender
    (`verification.broadcasts.run`) works through them and marks the broadcast
    finished when none is left queued or sending.
    """

    class Audience(models.TextChoices):
        OWNERS = "owners", "Owners of groups this bot protects"
        ALL = "all", "Everyone who started this bot"

    class State(models.TextChoices):
        DRAFT = "draft", "Waiting for confirmation"
        SENDING = "sending"
        FINISHED = "finished"
        CANCELLED = "cancelled"

    bot = models.ForeignKey(BotInstance, on_delete=models.CASCADE, related_name="+")
    audience = models.CharField(max_length=8, choices=Audience.choices)
    text = models.TextField()
    sent_by = models.BigIntegerField(help_text="The superadmin's Telegram id.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["bot", "state"], name="broadcast_bot_state")]

    def __str__(self) -> str:
        return f"broadcast {self.pk} to {self.audience} via bot {self.bot_id}"


class Delivery(models.Model):
    """One recipient of a broadcast, and what became of their message."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        # Claimed by a sender; left behind by a killed process it becomes `unknown`.
        SENDING = "sending"
        SENT = "sent"
        SKIPPED_BLOCKED = "skipped_blocked", "Skipped: blocked the bot"
        SKIPPED_OPTED_OUT = "skipped_opted_out", "Skipped: opted out"
        FAILED = "failed"
        # The sender died between claiming and recording: maybe delivered, not re-sent.
        UNKNOWN = "unknown", "Unknown: interrupted, not sent again"

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="deliveries")
    user_id = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "user_id"], name="unique_delivery"),
        ]
        indexes = [models.Index(fields=["broadcast", "status"], name="delivery_status")]

    def __str__(self) -> str:
        return f"{self.status} to {self.user_id} ({self.broadcast_id})"
