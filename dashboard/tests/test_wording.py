"""The vocabulary: codes in, sentences and numbers for people out."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard import wording


@pytest.mark.parametrize("value,text", [
    (0, "0"), (950, "950"), (1000, "1k"), (1200, "1.2k"), (2_500_000, "2.5M"), (0.5, "0.5"),
])
def test_compact_axis_labels(value, text):
    assert wording.compact(value) == text


@pytest.mark.parametrize("value,text", [(1000, "1,000"), (12345, "12,345"), (7.25, "7.2"),
                                        (None, "–")])
def test_numbers_for_people(value, text):
    assert wording.number(value) == text


def test_ago():
    now = timezone.now()
    assert wording.ago(now - timedelta(seconds=5), now) == "just now"
    assert wording.ago(now - timedelta(minutes=2), now) == "2 min ago"
    assert wording.ago(now - timedelta(hours=3), now) == "3 h ago"
    assert wording.ago(now - timedelta(days=1), now) == "1 day ago"
    assert wording.ago(None) == "never"


def test_every_outcome_and_engine_reason_has_words():
    from verification.models import Outcome

    assert set(wording.OUTCOMES) == set(Outcome.values)
    assert wording.outcome("join_approved") == "Join approved"
    for code in ("message", "join", "left_channel", "channel_join", "button", "unprotect",
                 "dashboard", "rejoined", "owed", "recheck", "unknown"):
        assert wording.reason(code) != code
    # Text the engine already wrote in words passes through.
    assert wording.reason("restrict failed: Forbidden") == "restrict failed: Forbidden"


def test_every_outcome_the_engine_records_has_words():
    from verification.models import Outcome

    codes = {value for value, _ in Outcome.choices}
    assert codes - set(wording.OUTCOMES) == set()
    assert codes - set(wording.OUTCOME_SERIES) == set()
