"""Retention deletes old rows in batches and keeps the rest."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics import retention
from analytics.models import Rollup
from analytics.tests.factory import make_group
from verification.models import VerificationEvent

pytestmark = pytest.mark.django_db


def test_it_prunes_old_events_in_batches_and_keeps_recent_ones(settings):
    settings.EVENT_RETENTION_DAYS = 30
    settings.ROLLUP_RETENTION_DAYS = 400
    group = make_group()
    now = timezone.now()
    old = [VerificationEvent(group=group, chat_id=1, user_id=i, outcome="verified",
                             created_at=now - timedelta(days=31)) for i in range(7)]
    VerificationEvent.objects.bulk_create(old)
    VerificationEvent.objects.create(group=group, chat_id=1, user_id=99, outcome="verified")
    Rollup.objects.create(span="d", bucket=now - timedelta(days=100), group_id=0,
                          outcome="verified", count=1)

    deleted = retention.prune(batch_size=3)

    # Seven old events go (in three batches); the recent one and the rollup stay.
    assert deleted["verification.VerificationEvent"] == 7
    assert list(VerificationEvent.objects.values_list("user_id", flat=True)) == [99]
    assert Rollup.objects.count() == 1


def test_the_command_reports_what_it_deleted(capsys):
    call_command("prune_analytics", "--batch-size", "10")
    assert "verification.VerificationEvent: 0 deleted" in capsys.readouterr().out
