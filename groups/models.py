"""Protected groups, the channels they require, and who is in them."""

import re
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext, pgettext_lazy

from bots.models import BotInstance
from groups import languages


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
            _("Use all, any, or a number of channels from 1 to %(max)s."),
            params={"max": MAX_POLICY_COUNT}, code="invalid_policy")


MAX_POLICY_COUNT = 10  # /protect links at most ten channels at once
MAX_WARNING_TEXT = 1000  # a custom warning, before names and channels are filled in
PLACEHOLDERS = frozenset({"mention", "group", "channels"})  # a custom warning's
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def validate_language(value: str) -> None:
    """`auto` (the most common language among the members) or a shipped language."""
    if value not in languages.choices():
        raise ValidationError(
            _("Use auto or one of these languages: %(codes)s."),
            params={"codes": ", ".join(languages.shipped())}, code="invalid_language")


def validate_warning_texts(value: Any) -> None:
    """Custom warnings per language: {"es": "...", "fa": "..."}, shipped codes only."""
    if not isinstance(value, dict):
        raise ValidationError(_("Give the custom warnings as {language: text}."),
                              code="invalid_warning_texts")
    for code, text in value.items():
        if code not in languages.shipped():
            raise ValidationError(
                _("“%(code)s” is not a language Nezuko speaks: use one of %(codes)s."),
                params={"code": str(code)[:20], "codes": ", ".join(languages.shipped())},
                code="invalid_language")
        if not isinstance(text, str) or len(text) > MAX_WARNING_TEXT:
            raise ValidationError(
                _("The custom warning for %(code)s must be text of at most %(max)s "
                  "characters."), params={"code": code, "max": MAX_WARNING_TEXT},
                code="invalid_warning_text")
        # The engine fills exactly these, as typed; other braces would reach members.
        if set(PLACEHOLDER.findall(text)) - PLACEHOLDERS or "{" in PLACEHOLDER.sub("", text) \
                or "}" in PLACEHOLDER.sub("", text):
            raise ValidationError(
                _("In the custom warning for %(code)s, braces are only for {mention}, "
                  "{group} and {channels}."), params={"code": code},
                code="invalid_warning_text")


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
    """What members need, completing "members need ..." (in the language active now)."""
    # Translators: completes "Policy: members need ...".
    if policy == "any":
        return pgettext("policy", "any one channel")
    if policy.isdigit():
        count = int(policy)
        # Translators: completes "Policy: members need ...".
        return ngettext("at least %(count)s channel", "at least %(count)s channels",
                        count) % {"count": count}
    # Translators: completes "Policy: members need ...".
    return pgettext("policy", "every channel")


class ProtectedGroup(models.Model):
    """A Telegram group a bot guards; settings live on the row (one per group)."""

    class Action(models.TextChoices):
        MUTE = "mute", pgettext_lazy("action", "Mute until they join")
        KICK = "kick", pgettext_lazy("action", "Remove from the group")
        DELETE = "delete", pgettext_lazy("action", "Delete messages only")
        # Shadow mode: decide and record "would have restricted", change nothing.
        OBSERVE = "observe", pgettext_lazy("action", "Observe only (record, change nothing)")

    class FailMode(models.TextChoices):
        CLOSED = "closed", pgettext_lazy("fail mode", "Fail closed (restrict when unsure)")
        OPEN = "open", pgettext_lazy("fail mode", "Fail open (allow when unsure)")

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
    warning_texts = models.JSONField(
        default=dict, blank=True, validators=[validate_warning_texts],
        help_text="Custom warning per language, {language: text}; a reader whose language "
                  "has none gets the custom warning above, else the built-in one.",
    )
    language = models.CharField(
        max_length=8, default="auto", validators=[validate_language],
        help_text="The language of messages to the whole group: auto (the most common "
                  "among its members) or a language code.")
    # What `auto` means here: the most common language among members lately seen,
    # written now and then by the engine (groups.languages.Tally).
    members_language = models.CharField(max_length=8, blank=True)
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
    """A group requires a channel; the group's own invite link to it, when the bot made one.

    Joins through `invite_link` arrive with it in the chat_member update, which is
    how a subscriber is attributed to the group that sent them (docs/growth.md).
    Empty until the bot could create it (it needs the channel's "Invite users"
    right); /protect and the periodic check-up try again while it is empty.
    """

    group = models.ForeignKey(ProtectedGroup, on_delete=models.CASCADE, related_name="links")
    channel = models.ForeignKey(EnforcedChannel, on_delete=models.CASCADE, related_name="links")
    invite_link = models.CharField(max_length=255, blank=True)
    invite_link_created_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "channel"], name="unique_group_channel"),
        ]
        indexes = [
            # "Which group's link did this person join through?" (every channel join).
            models.Index(fields=["invite_link"], name="groupchannel_invite_link",
                         condition=~models.Q(invite_link="")),
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


RETENTION_DAYS = (7, 30)
STAGES = ("started", "warned", "joined_exact", "joined_likely", "verified")


class FunnelDayQuerySet(models.QuerySet):
    """The growth funnel's reads (the dashboard, the API and /status share them).

    They sum day rows, never journeys, so a month of every group is a few
    thousand rows however many people were warned.
    """

    def scope(self, group_ids: list[int] | None) -> "FunnelDayQuerySet":
        return self if group_ids is None else self.filter(group_id__in=group_ids)

    def days(self, first: date, last: date) -> "FunnelDayQuerySet":
        """Rows of the days `first` to `last`, both included (UTC)."""
        return self.filter(day__gte=first, day__lte=last)

    def funnel(self, today: date | None = None) -> dict[str, int]:
        """{stage: count}, and `due_7d`/`kept_7d`, `due_30d`/`kept_30d` (`_sums`)."""
        sums = self.order_by().aggregate(**_sums(today or timezone.now().date()))
        return _retained({stage: n or 0 for stage, n in sums.items()})

    def by_channel(self, today: date | None = None) -> list[dict[str, Any]]:
        """The funnel per group and channel."""
        rows = self.values("group_id", "channel_chat_id").annotate(
            **_sums(today or timezone.now().date())).order_by("group_id", "channel_chat_id")
        return [_retained({k: v or 0 for k, v in row.items()}) for row in rows]

    def daily(self) -> list[dict[str, Any]]:
        """[{day, warned, joined_exact, joined_likely, verified}] by the day journeys began."""
        return list(self.values("day").annotate(
            **{stage: Sum(stage) for stage in STAGES if stage != "started"}).order_by("day"))


def _sums(today: date) -> dict[str, Sum]:
    """Stages by the day journeys began; retention by the day people joined: of those
    who joined at least `days` full days ago (`due`), how many left within `days`."""
    sums: dict[str, Sum] = {stage: Sum(stage) for stage in STAGES}
    for days in RETENTION_DAYS:
        due = Q(day__lt=today - timedelta(days=days))
        sums[f"due_{days}d"] = Sum("joined", filter=due)
        sums[f"left_{days}d"] = Sum(f"left_{days}d", filter=due)
    return sums


def _retained(row: dict[str, Any]) -> dict[str, Any]:
    for days in RETENTION_DAYS:
        row[f"kept_{days}d"] = row[f"due_{days}d"] - row.pop(f"left_{days}d")
    return row


class FunnelDay(models.Model):
    """The funnel summed per group, channel and day (UTC).

    `started` … `verified` count journeys by the day they began (`Attribution.
    started_at`); `joined`, `left_7d` and `left_30d` count by the day people
    joined the channel: how many joined, and how many of those left it within 7
    and within 30 days. Kept by the ledger operations that move a journey
    (`groups.attribution`), each step counted once, when the journey reaches it.
    """

    group_id = models.BigIntegerField()  # a plain id: rows age out like rollups
    channel_chat_id = models.BigIntegerField()
    day = models.DateField()
    started = models.IntegerField(default=0)
    warned = models.IntegerField(default=0)
    joined_exact = models.IntegerField(default=0)
    joined_likely = models.IntegerField(default=0)
    verified = models.IntegerField(default=0)
    joined = models.IntegerField(default=0)
    left_7d = models.IntegerField(default=0)
    left_30d = models.IntegerField(default=0)

    objects = FunnelDayQuerySet.as_manager()

    class Meta:
        constraints = [
            # Also the index an owner's reads walk: their groups, a range of days.
            models.UniqueConstraint(fields=["group_id", "channel_chat_id", "day"],
                                    name="unique_funnel_day"),
        ]
        indexes = [models.Index(fields=["day"], name="funnelday_day")]

    def __str__(self) -> str:
        return f"{self.day} g{self.group_id} c{self.channel_chat_id}: {self.warned} warned"


class Attribution(models.Model):
    """One person's way through a group's growth funnel for one channel.

    warned here (a warning or a join-request message naming the channel) ->
    joined the channel (`how`: "exact" through this group's own invite link,
    "likely" without it but within `groups.attribution.LIKELY_WINDOW` of a
    warning here) -> verified in the group (unmuted or approved) -> `left_at`
    if they left the channel again. One row per (group, channel, person): the
    first journey is the one counted; later warnings and joins change nothing.
    Written only through `groups.ledger` (kept through a database outage),
    with the sums in `FunnelDay` that every figure reads.
    """

    class How(models.TextChoices):
        NONE = "", "not joined"
        EXACT = "exact", "through the group's invite link"
        LIKELY = "likely", "after a warning in the group"

    group = models.ForeignKey(ProtectedGroup, on_delete=models.CASCADE,
                              related_name="attributions")
    channel_chat_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    # The journey's first step (warned, or joined through the link unwarned): the
    # funnel's cohort is every journey started in the period.
    started_at = models.DateTimeField()
    warned_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(null=True, blank=True)
    how = models.CharField(max_length=8, choices=How.choices, blank=True, default="")
    verified_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "channel_chat_id", "user_id"],
                                    name="unique_attribution"),
        ]
        indexes = [
            # A channel join or leave: this person's journeys towards this channel.
            models.Index(fields=["user_id", "channel_chat_id"], name="attribution_user_channel"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} via {self.group} -> {self.channel_chat_id} ({self.how})"
