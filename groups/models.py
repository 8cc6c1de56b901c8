"""Protected groups, the channels they require, and who is in them."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from bots.models import BotInstance


class ProtectedGroupQuerySet(models.QuerySet):
    def enabled(self):
        return self.filter(enabled=True)

    def needing_attention(self):
        return self.filter(needs_attention=True)


def validate_policy(value: str) -> None:
    """`all`, `any`, or a number of channels (at least 1): see ProtectedGroup.policy."""
    if value in ("all", "any"):
        return
    if not (value.isdigit() and 1 <= int(value) <= MAX_POLICY_COUNT):
        raise ValidationError(
            "Use all, any, or a number of channels from 1 to %(max)s.",
            params={"max": MAX_POLICY_COUNT}, code="invalid_policy")


MAX_POLICY_COUNT = 10  # /protect links at most ten channels at once
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,4})?$")


def validate_language(value: str) -> None:
    """`auto` (each person's Telegram language) or a code such as en, de, pt-br."""
    if value != "auto" and not LANGUAGE_CODE.match(value):
        raise ValidationError("Use auto or a language code such as en, de or pt-br.",
                              code="invalid_language")


def required_channels(policy: str, linked: int) -> int:
    """How many of `linked` channels a member must be subscribed to under `policy`.

    A number above the channels linked asks for all of them: unlinking a channel
    must never make the group impossible to speak in.
    """
    if policy == "any":
        return min(1, linked)
    if policy.isdigit():
        return min(int(policy), linked)
    return linked


def policy_label(policy: str) -> str:
    if policy == "any":
        return "any one channel"
    if policy.isdigit():
        return f"at least {policy} channel" + ("s" if policy != "1" else "")
    return "every channel"


class ProtectedGroup(models.Model):
    """A Telegram group a bot guards; settings live on the row (one per group)."""

    class Action(models.TextChoices):
        MUTE = "mute", "Mute until they join"
        KICK = "kick", "Remove from the group"
        DELETE = "delete", "Delete messages only"
        # Shadow mode: decide and record "would have restricted", change nothing.
        OBSERVE = "observe", "Observe only (record, change nothing)"

    class FailMode(models.TextChoices):
        CLOSED = "closed", "Fail closed (restrict when unsure)"
        OPEN = "open", "Fail open (allow when unsure)"

    bot = models.ForeignKey(BotInstance, on_delete=models.CASCADE, related_name="groups")
    chat_id = models.BigIntegerField()
    title = models.CharField(max_length=255, blank=True)
    username = models.CharField(max_length=64, blank=True)
    is_forum = models.BooleanField(default=False)
    # The channel this group is the discussion group of: posts as it are not a bypass.
    linked_chat_id = models.BigIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True, db_index=True)

    # Who set it up in Telegram (the group admin who ran /protect).
    setup_by_user_id = models.BigIntegerField(null=True, blank=True)
    setup_by_name = models.CharField(max_length=255, blank=True)

    # Settings.
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.MUTE)
    warning_delete_after = models.PositiveIntegerField(
        default=120, help_text="Seconds before a warning removes itself; 0 keeps it."
    )
    fail_mode = models.CharField(max_length=8, choices=FailMode.choices, default=FailMode.CLOSED)
    policy = models.CharField(
        max_length=8, default="all", validators=[validate_policy],
        help_text="Which linked channels a member needs: all, any, or a number (at least N).",
    )
    warning_text = models.TextField(
        blank=True,
        help_text="Custom warning. Placeholders: {mention}, {group}, {channels}.",
    )
    language = models.CharField(max_length=8, default="en", validators=[validate_language])
    # The human check for newcomers (off by default): press the right button in time.
    captcha = models.BooleanField(
        default=False, help_text="Newcomers must also answer a simple question in time.")
    captcha_timeout = models.PositiveIntegerField(
        default=120, validators=[MinValueValidator(30), MaxValueValidator(3600)],
        help_text="Seconds a newcomer has to answer before being removed (30 to 3600).")
    throttle = models.PositiveIntegerField(
        default=60, validators=[MaxValueValidator(3600)],
        help_text="Seconds between two answers to one member's commands (admins excepted); "
                  "0 answers every command.")
    join_request_timeout = models.PositiveIntegerField(
        default=24 * 3600, help_text="Seconds before an unmet join request is declined."
    )
    allowed_user_ids = models.JSONField(
        default=list, blank=True, help_text="Telegram user ids never restricted here."
    )

    # What runbot last saw of the bot's own rights here (my_chat_member).
    bot_status = models.CharField(max_length=32, blank=True)
    bot_rights = models.JSONField(default=dict, blank=True)
    needs_attention = models.BooleanField(default=False, db_index=True)
    attention_reason = models.CharField(max_length=255, blank=True)
    admins_refreshed_at = models.DateTimeField(null=True, blank=True)

    channels = models.ManyToManyField(
        "EnforcedChannel", through="GroupChannel", related_name="groups", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProtectedGroupQuerySet.as_manager()

    class Meta:
        ordering = ["title", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "chat_id"], name="unique_group_per_bot"),
        ]

    def __str__(self) -> str:
        return self.title or str(self.chat_id)

    @property
    def policy_label(self) -> str:
        return policy_label(self.policy)


class EnforcedChannel(models.Model):
    """A channel members must subscribe to; the bot must be admin in it."""

    bot = models.ForeignKey(BotInstance, on_delete=models.CASCADE, related_name="channels")
    chat_id = models.BigIntegerField()
    title = models.CharField(max_length=255, blank=True)
    username = models.CharField(max_length=64, blank=True)
    invite_link = models.URLField(blank=True)
    bot_is_admin = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "chat_id"], name="unique_channel_per_bot"),
        ]

    def __str__(self) -> str:
        return self.title or (f"@{self.username}" if self.username else str(self.chat_id))

    @property
    def join_url(self) -> str:
        if self.username:
            return f"https://t.me/{self.username}"
        return self.invite_link


class GroupChannel(models.Model):
    group = models.ForeignKey(ProtectedGroup, on_delete=models.CASCADE, related_name="links")
    channel = models.ForeignKey(EnforcedChannel, on_delete=models.CASCADE, related_name="links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "channel"], name="unique_group_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.group} -> {self.channel}"


class GroupMember(models.Model):
    """A user Nezuko has seen in a protected group, and what it did to them.

    `restricted_by_nezuko` is the ledger: Nezuko lifts only restrictions it
    placed, so a member muted by a human admin stays muted.

    `owed_action` is what Nezuko decided but Telegram did not carry out (a
    429 storm, a 5xx, a network error): retried with backoff from
    `owed_retry_at` until done, or dropped once moot (they subscribed, left,
    the group was unprotected). See verification/owed.py.
    """

    class Owed(models.TextChoices):
        NOTHING = "", "nothing"
        RESTRICT = "restrict", "a restriction"
        UNMUTE = "unmute", "an unmute"

    class Status(models.TextChoices):
        MEMBER = "member"
        RESTRICTED = "restricted"
        LEFT = "left"
        KICKED = "kicked"
        ADMINISTRATOR = "administrator"
        CREATOR = "creator"

    group = models.ForeignKey(ProtectedGroup, on_delete=models.CASCADE, related_name="members")
    user_id = models.BigIntegerField()
    username = models.CharField(max_length=64, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.MEMBER)
    restricted_by_nezuko = models.BooleanField(default=False)
    restricted_at = models.DateTimeField(null=True, blank=True)
    restriction_reason = models.CharField(max_length=255, blank=True)
    warning_message_id = models.BigIntegerField(null=True, blank=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    owed_action = models.CharField(max_length=16, choices=Owed.choices, blank=True, default="")
    owed_since = models.DateTimeField(null=True, blank=True)
    owed_attempts = models.PositiveIntegerField(default=0)
    owed_retry_at = models.DateTimeField(null=True, blank=True)
    owed_error = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "user_id"], name="unique_member_per_group"),
        ]
        indexes = [
            # "What is owed and due now": small, since almost nothing is owed.
            models.Index(
                fields=["owed_retry_at"],
                name="groupmember_owed_due",
                condition=~models.Q(owed_action=""),
            ),
            # "Every linked group where this user is a known member" (channel leave).
            models.Index(fields=["user_id"], name="groupmember_user"),
            models.Index(
                fields=["group", "restricted_by_nezuko"], name="groupmember_restricted"
            ),
        ]

    def __str__(self) -> str:
        name = f"@{self.username}" if self.username else (self.first_name or str(self.user_id))
        return f"{name} in {self.group}"


class GroupAdmin(models.Model):
    """The cached admin list of a group (refreshed on changes and periodically)."""

    group = models.ForeignKey(ProtectedGroup, on_delete=models.CASCADE, related_name="admins")
    user_id = models.BigIntegerField()
    username = models.CharField(max_length=64, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    is_creator = models.BooleanField(default=False)
    is_anonymous = models.BooleanField(default=False)
    can_restrict_members = models.BooleanField(default=False)
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "user_id"], name="unique_admin_per_group"),
        ]
        indexes = [models.Index(fields=["user_id"], name="groupadmin_user")]

    def __str__(self) -> str:
        return f"{self.username or self.user_id} (admin of {self.group})"


class ConfigVersion(models.Model):
    """One row whose number moves whenever anything the engine enforces changes.

    Every runbot compares it with the number it loaded its cached GroupConfigs
    at, every few seconds (`groups.config`). It lives in the database, beside
    the change itself, so a change commits with its version and reaches every
    process even while Redis is unreachable.
    """

    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"configuration version {self.version}"
