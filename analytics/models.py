"""Rollups. Charts read these, never the raw events, so they stay fast at tens
of millions of events.

Two levels are kept. `DecisionRollup` has one row per minute, group and
outcome (the fine-grained record and the overview's last hour). `Rollup`
holds the same figures per hour and per day, once per group and once more for
every group together (`group_id = 0`), so a staff-wide chart over a month sums
a few thousand rows instead of millions.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from analytics.histogram import LATENCY_BUCKETS_MS  # noqa: F401  (re-exported)
from analytics.querysets import (  # noqa: F401  (ALL_GROUPS re-exported)
    ALL_GROUPS,
    ApiCallRollupQuerySet,
    DecisionRollupQuerySet,
    RollupQuerySet,
)
from bots.models import BotInstance
from groups.models import ProtectedGroup


class DecisionFigures(models.Model):
    """What both decision rollups count for one bucket, group and outcome."""

    count = models.PositiveIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    cache_misses = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    # Counts per LATENCY_BUCKETS_MS bucket, same order.
    latency_buckets = models.JSONField(default=list)

    class Meta:
        abstract = True


class CallFigures(models.Model):
    """What both API call rollups count for one bucket, bot, method and outcome."""

    method = models.CharField(max_length=64)
    outcome = models.CharField(max_length=32, help_text="ok, or the error kind")
    count = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)

    class Meta:
        abstract = True


class DecisionRollup(DecisionFigures):
    """Decisions per minute, group and outcome, with cache and latency figures."""

    minute = models.DateTimeField()
    group = models.ForeignKey(ProtectedGroup, null=True, on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey(BotInstance, null=True, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=16)

    objects = DecisionRollupQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "group", "outcome"], name="unique_decision_rollup"
            )
        ]
        indexes = [
            models.Index(fields=["minute"], name="decisionrollup_minute"),
            models.Index(fields=["group", "minute"], name="decisionrollup_group_minute"),
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.outcome} x{self.count}"


class Rollup(DecisionFigures):
    """Decisions per hour or day, per group (or all groups), per outcome."""

    class Span(models.TextChoices):
        HOUR = "h", _("hour")
        DAY = "d", _("day")
        # Per group and day, every outcome counted together (ranking groups).
        DAY_TOTAL = "t", _("day total")

    span = models.CharField(max_length=1, choices=Span.choices)
    bucket = models.DateTimeField(help_text="Start of the hour or day (UTC).")
    # A plain id, not a foreign key: 0 means every group, and rows of a deleted
    # group age out with retention like the rest.
    group_id = models.BigIntegerField()
    outcome = models.CharField(max_length=16)

    objects = RollupQuerySet.as_manager()

    class Meta:
        constraints = [
            # Also the index every chart query walks: span, group, time range.
            models.UniqueConstraint(
                fields=["span", "group_id", "bucket", "outcome"], name="unique_rollup"
            )
        ]
        indexes = [models.Index(fields=["span", "bucket"], name="rollup_span_bucket")]

    def __str__(self) -> str:
        when = f"{self.bucket:%Y-%m-%d %H:%M}"
        return f"{self.span} {when} g{self.group_id} {self.outcome} x{self.count}"


class ApiCallRollup(CallFigures):
    """Telegram Bot API calls per minute, bot, method and outcome."""

    minute = models.DateTimeField()
    bot = models.ForeignKey(BotInstance, null=True, on_delete=models.CASCADE, related_name="+")

    objects = ApiCallRollupQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "bot", "method", "outcome"], name="unique_api_rollup"
            )
        ]
        indexes = [
            models.Index(fields=["minute"], name="apirollup_minute"),
            models.Index(fields=["bot", "minute"], name="apirollup_bot_minute"),
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.method} {self.outcome} x{self.count}"


class ApiCallHourly(CallFigures):
    """The same calls per hour: what the charts read, sixty times fewer rows."""

    hour = models.DateTimeField()
    bot_id = models.BigIntegerField(null=True)

    objects = ApiCallRollupQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "bot_id", "method", "outcome"], name="unique_api_hourly"
            )
        ]
        indexes = [models.Index(fields=["hour"], name="apihourly_hour")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.method} {self.outcome} x{self.count}"


class SizeSample(models.Model):
    """How many members a protected group or a channel it requires had, once a day.

    Taken by `analytics.sampling` (getChatMemberCount at the lowest priority):
    the user-growth series beside the funnel.
    """

    class Kind(models.TextChoices):
        GROUP = "group", _("group members")
        CHANNEL = "channel", _("channel subscribers")

    day = models.DateField()
    bot_id = models.BigIntegerField()
    chat_id = models.BigIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    count = models.PositiveIntegerField()
    taken_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Also the index the series walk: one bot's chats over a range of days.
            models.UniqueConstraint(fields=["bot_id", "chat_id", "day"], name="unique_size_sample"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.chat_id}: {self.count}"
