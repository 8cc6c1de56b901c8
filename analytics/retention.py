"""Retention: old rows go in small batches so no delete holds long locks."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Model
from django.utils import timezone

from analytics.models import ApiCallHourly, ApiCallRollup, DecisionRollup, Rollup
from verification.models import VerificationEvent


def prune_batch(model: type[Model], time_field: str, cutoff: datetime, batch_size: int) -> int:
    """Deletes up to `batch_size` rows older than `cutoff`; returns how many."""
    ids = list(
        model.objects.filter(**{f"{time_field}__lt": cutoff})
        .order_by()
        .values_list("pk", flat=True)[:batch_size]
    )
    if not ids:
        return 0
    model.objects.filter(pk__in=ids).delete()
    return len(ids)


def targets(now: datetime | None = None) -> list[tuple[type[Model], str, datetime]]:
    """(model, time field, cutoff): raw events and minute rows go with the events,
    hour and day rollups are kept for `ROLLUP_RETENTION_DAYS`."""
    now = now or timezone.now()
    events_cutoff = now - timedelta(days=settings.EVENT_RETENTION_DAYS)
    rollups_cutoff = now - timedelta(days=settings.ROLLUP_RETENTION_DAYS)
    return [
        (VerificationEvent, "created_at", events_cutoff),
        (DecisionRollup, "minute", events_cutoff),
        (ApiCallRollup, "minute", events_cutoff),
        (Rollup, "bucket", rollups_cutoff),
        (ApiCallHourly, "hour", rollups_cutoff),
    ]


def prune(batch_size: int = 5000, now: datetime | None = None) -> dict[str, int]:
    """Runs every target's batches until none has work; returns rows deleted per model."""
    deleted: dict[str, int] = {}
    for model, field, cutoff in targets(now):
        total = 0
        while (count := prune_batch(model, field, cutoff, batch_size)) > 0:
            total += count
        deleted[model._meta.label] = total
    return deleted
