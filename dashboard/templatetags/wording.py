"""Template filters over dashboard.wording: `{% load wording %}`."""

from __future__ import annotations

from django import template

from dashboard import wording

register = template.Library()

register.filter("outcome", wording.outcome)
register.filter("series", wording.series)
register.filter("reason", wording.reason)
register.filter("number", wording.number)
register.filter("ago", wording.ago)
register.filter("command_kind", wording.command_kind)
