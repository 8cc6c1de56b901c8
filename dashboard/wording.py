"""One vocabulary for what the engine records, in words for people.

The engine stores short codes (`restricted`, `left_channel`, `channel_join`);
pages, the live feed and the member list show them only through these
functions, so a code reads the same everywhere. Free text the engine wrote
itself ("restrict failed: …") passes through unchanged.

Every word here is translated (Django gettext) into the language of the page
or the live feed frame being rendered; the tables hold lazy strings, so they
are translated when read, never when imported.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, ngettext_lazy, pgettext_lazy

# verification.models.Outcome values, as a pill shows them.
OUTCOMES = {
    "verified": pgettext_lazy("outcome pill", "Verified"),
    "restricted": pgettext_lazy("outcome pill", "Restricted"),
    "unmuted": pgettext_lazy("outcome pill", "Unmuted"),
    "kicked": pgettext_lazy("outcome pill", "Removed"),
    "deleted": pgettext_lazy("outcome pill", "Message deleted"),
    "join_approved": pgettext_lazy("outcome pill", "Join approved"),
    "join_declined": pgettext_lazy("outcome pill", "Join declined"),
    "would_restrict": pgettext_lazy("outcome pill", "Would have restricted"),
    "error": pgettext_lazy("outcome pill", "Error"),
}

# The legend of a chart: what the series counts.
OUTCOME_SERIES = {
    "verified": pgettext_lazy("chart series", "verified"),
    "restricted": pgettext_lazy("chart series", "restricted"),
    "unmuted": pgettext_lazy("chart series", "unmuted after joining"),
    "kicked": pgettext_lazy("chart series", "removed"),
    "deleted": pgettext_lazy("chart series", "messages deleted"),
    "join_approved": pgettext_lazy("chart series", "join requests approved"),
    "join_declined": pgettext_lazy("chart series", "join requests declined"),
    "would_restrict": pgettext_lazy("chart series", "would have restricted (observe mode)"),
    "error": pgettext_lazy("chart series", "errors"),
}

# A chart tooltip's count of one series: "1 error", "1,200 errors". The plural form
# follows "count"; "%(number)s" is the same count formatted for the language.
OUTCOME_COUNTS = {
    "verified": ngettext_lazy("%(number)s verified", "%(number)s verified", "count"),
    "restricted": ngettext_lazy("%(number)s restricted", "%(number)s restricted", "count"),
    "unmuted": ngettext_lazy("%(number)s unmuted after joining",
                             "%(number)s unmuted after joining", "count"),
    "kicked": ngettext_lazy("%(number)s removed", "%(number)s removed", "count"),
    "deleted": ngettext_lazy("%(number)s message deleted", "%(number)s messages deleted",
                             "count"),
    "join_approved": ngettext_lazy("%(number)s join request approved",
                                   "%(number)s join requests approved", "count"),
    "join_declined": ngettext_lazy("%(number)s join request declined",
                                   "%(number)s join requests declined", "count"),
    "would_restrict": ngettext_lazy("%(number)s would have been restricted (observe mode)",
                                    "%(number)s would have been restricted (observe mode)",
                                    "count"),
    "error": ngettext_lazy("%(number)s error", "%(number)s errors", "count"),
}

DECISIONS = ngettext_lazy("%(number)s decision", "%(number)s decisions", "count")

# bots.models.BotCommand kinds, as the dashboard shows a queued command.
COMMAND_KINDS = {
    "unmute": pgettext_lazy("command", "Unmute"),
    "ban": pgettext_lazy("command", "Ban"),
    "unban": pgettext_lazy("command", "Unban"),
    "recheck": pgettext_lazy("command", "Re-check a user"),
    "refresh_admins": pgettext_lazy("command", "Refresh group admins"),
    "warm_cache": pgettext_lazy("command", "Warm membership cache"),
}

# Decision reasons (verification.decisions) and ledger reasons, as sentences.
REASONS = {
    "message": gettext_lazy("Wrote in the group without following the channel"),
    "join": gettext_lazy("Joined the group without following the channel"),
    "left_channel": gettext_lazy("Left the channel"),
    "unknown": gettext_lazy("Channel membership could not be checked"),
    "owed": gettext_lazy("Carried out on a retry after Telegram refused at first"),
    "recheck": gettext_lazy("Checked again from the dashboard"),
    "channel_join": gettext_lazy("Joined the channel"),
    "button": gettext_lazy("Joined the channel and pressed “I joined”"),
    "dashboard": gettext_lazy("Unmuted by an admin on the dashboard"),
    "unprotect": gettext_lazy("Protection was switched off in this group"),
    "unprotected": gettext_lazy("The group is not protected"),
    "rejoined": gettext_lazy("Came back to the group already following the channel"),
    "admin": gettext_lazy("Group admin"),
    "anonymous_admin": gettext_lazy("Anonymous group admin"),
    "linked_channel": gettext_lazy("Post from the group's linked channel"),
    "automatic_forward": gettext_lazy("Automatic forward from the linked channel"),
    "no_sender": gettext_lazy("Message without a sender"),
    "timed out": gettext_lazy("The join request expired before they joined the channel"),
}


def outcome(code: str) -> str:
    return str(OUTCOMES.get(code, code.replace("_", " ").capitalize()))


def series(code: str) -> str:
    return str(OUTCOME_SERIES.get(code, code.replace("_", " ")))


def series_count(code: str, value: float) -> str:
    """How many of a series, as a chart tooltip says it: "1 error", "1,200 verified"."""
    text = OUTCOME_COUNTS.get(code)
    if text is None:
        return f"{number(value)} {series(code)}"
    return counted(text, value)


def counted(text, value: float) -> str:
    """An `ngettext_lazy(..., "count")` text with "%(number)s": plural form by the
    count, the count itself formatted for people."""
    # gettext's plural rules take whole numbers only.
    return str(text % {"count": round(value), "number": number(value)})


def command_kind(code: str) -> str:
    return str(COMMAND_KINDS.get(code, code.replace("_", " ").capitalize()))


def decisions(value: float) -> str:
    """"1 decision", "1,200 decisions": what a latency or hourly bar counts."""
    return counted(DECISIONS, value)


def reason(code: str) -> str:
    """A reason code as a sentence; anything else (already words) unchanged."""
    if not code:
        return ""
    return str(REASONS.get(code, code))


def number(value: float | int | None) -> str:
    """A count for people, grouped as their language writes it: 1,000 and 12,345 in
    English, 1.000 in Spanish, 12 345 in Russian; fractions keep one decimal."""
    if value is None:
        return "–"
    if float(value).is_integer():
        return formats.number_format(int(value), force_grouping=True)
    return formats.number_format(round(value, 1), decimal_pos=1, force_grouping=True)


def compact(value: float | int) -> str:
    """An axis label: 950, 1k, 1.2k, 3.5M (1,2k in Russian); never 1e+03."""
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return _decimal(f"{value / limit:.1f}".rstrip("0").rstrip(".")) + suffix
    if value.is_integer():
        return str(int(value))
    return _decimal(f"{value:.1f}".rstrip("0").rstrip("."))


def _decimal(text: str) -> str:
    return text.replace(".", formats.get_format("DECIMAL_SEPARATOR"))


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """"just now", "2 min ago", "3 h ago", "5 days ago"."""
    if moment is None:
        # Translators: when something (a heartbeat, a token's use) last happened.
        return _("never")
    seconds = ((now or timezone.now()) - moment).total_seconds()
    if seconds < 45:
        return _("just now")
    minutes = round(seconds / 60)
    if minutes < 60:
        # Translators: a short "minutes ago", as in a table cell.
        return ngettext("%(count)s min ago", "%(count)s min ago", minutes) % {"count": minutes}
    hours = round(minutes / 60)
    if hours < 24:
        # Translators: a short "hours ago", as in a table cell.
        return ngettext("%(count)s h ago", "%(count)s h ago", hours) % {"count": hours}
    days = round(hours / 24)
    return ngettext("%(count)s day ago", "%(count)s days ago", days) % {"count": days}
