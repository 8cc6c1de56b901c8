"""One vocabulary for what the engine records, in words for people.

The engine stores short codes (`restricted`, `left_channel`, `channel_join`);
pages, the live feed and the member list show them only through these
functions, so a code reads the same everywhere. Free text the engine wrote
itself ("restrict failed: …") passes through unchanged.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

# verification.models.Outcome values, as a pill shows them.
OUTCOMES = {
    "verified": "Verified",
    "restricted": "Restricted",
    "unmuted": "Unmuted",
    "kicked": "Removed",
    "deleted": "Message deleted",
    "join_approved": "Join approved",
    "join_declined": "Join declined",
    "would_restrict": "Would have restricted",
    "error": "Error",
}

# The legend of a chart: what the series counts.
OUTCOME_SERIES = {
    "verified": "verified",
    "restricted": "restricted",
    "unmuted": "unmuted after joining",
    "kicked": "removed",
    "deleted": "messages deleted",
    "join_approved": "join requests approved",
    "join_declined": "join requests declined",
    "would_restrict": "would have restricted (observe mode)",
    "error": "errors",
}

# Decision reasons (verification.decisions) and ledger reasons, as sentences.
REASONS = {
    "message": "Wrote in the group without following the channel",
    "join": "Joined the group without following the channel",
    "left_channel": "Left the channel",
    "unknown": "Channel membership could not be checked",
    "owed": "Carried out on a retry after Telegram refused at first",
    "recheck": "Checked again from the dashboard",
    "channel_join": "Joined the channel",
    "button": "Joined the channel and pressed “I joined”",
    "dashboard": "Unmuted by an admin on the dashboard",
    "unprotect": "Protection was switched off in this group",
    "unprotected": "The group is not protected",
    "rejoined": "Came back to the group already following the channel",
    "admin": "Group admin",
    "anonymous_admin": "Anonymous group admin",
    "linked_channel": "Post from the group's linked channel",
    "automatic_forward": "Automatic forward from the linked channel",
    "no_sender": "Message without a sender",
    "timed out": "The join request expired before they joined the channel",
}


def outcome(code: str) -> str:
    return OUTCOMES.get(code, code.replace("_", " ").capitalize())


def series(code: str) -> str:
    return OUTCOME_SERIES.get(code, code.replace("_", " "))


def reason(code: str) -> str:
    """A reason code as a sentence; anything else (already words) unchanged."""
    if not code:
        return ""
    return REASONS.get(code, code)


def number(value: float | int | None) -> str:
    """A count for people: 1,000 and 12,345; fractions keep one decimal."""
    if value is None:
        return "–"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def compact(value: float | int) -> str:
    """An axis label: 950, 1k, 1.2k, 3.5M; never 1e+03."""
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    if value.is_integer():
        return str(int(value))
    return f"{value:.1f}".rstrip("0").rstrip(".")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """"just now", "2 min ago", "3 h ago", "5 days ago"."""
    if moment is None:
        return "never"
    seconds = ((now or timezone.now()) - moment).total_seconds()
    if seconds < 45:
        return "just now"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = round(minutes / 60)
    if hours < 24:
        return f"{hours} h ago"
    days = round(hours / 24)
    return f"{days} day{'s' if days != 1 else ''} ago"
