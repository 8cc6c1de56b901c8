"""Per-minute rollups. Charts read these, never the raw events, so they stay
fast at tens of millions of events."""

from django.db import models

from bots.models import BotInstance
from groups.models import ProtectedGroup

# Upper bounds (ms) of the latency histogram buckets; the last is +inf.
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, float("inf"))


class DecisionRollup(models.Model):
    """Decisions per minute, group and outcome, with cache and latency figures."""

    minute = models.DateTimeField()
    group = models.ForeignKey(ProtectedGroup, null=True, on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey(BotInstance, null=True, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=16)
    count = models.PositiveIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    cache_misses = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    # Counts per LATENCY_BUCKETS_MS bucket, same order.
    latency_buckets = models.JSONField(default=list)

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


class ApiCallRollup(models.Model):
    """Telegram Bot API calls per minute, bot, method and outcome."""

    minute = models.DateTimeField()
    bot = models.ForeignKey(BotInstance, null=True, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=64)
    outcome = models.CharField(max_length=32, help_text="ok, or the error kind")
    count = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "bot", "method", "outcome"], name="unique_api_rollup"
            )
        ]
        indexes = [models.Index(fields=["minute"], name="apirollup_minute")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.method} {self.outcome} x{self.count}"
