"""A group's settings: one change, validated by the model, audited once.

`OPTIONS` names every setting the way people type it (`/settings <name>
<value>` in Telegram); the dashboard form and the API schema offer the same
options. Each maps to one `ProtectedGroup` field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from bots import audit
from bots.audit import Actor, AuditAction
from groups import languages
from groups.models import MAX_POLICY_COUNT, ProtectedGroup
from groups.services import checks

# What an owner may tune.
SETTING_FIELDS = ("action", "policy", "captcha", "captcha_timeout", "warning_delete_after",
                  "fail_mode", "language", "throttle", "join_request_timeout", "warning_text",
                  "warning_texts", "allowed_user_ids")


@dataclasses.dataclass(frozen=True, slots=True)
class Option:
    """One setting as typed: `/settings <name> <value>`."""

    name: str
    field: str  # the ProtectedGroup field it sets
    allowed: Any  # the allowed values, as an error names them (a lazy text)
    parse: Callable[[str], Any]  # raises ValueError for a value outside `allowed`
    show: Callable[[Any], str] = str  # the stored value, as typed


def _choice(*values: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in values:
            raise ValueError(text)
        return text
    return parse


def _seconds(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.removesuffix("s"))  # "120" or "120s"
        if not low <= value <= high:
            raise ValueError(text)
        return value
    return parse


def _policy(text: str) -> str:
    if text in ("all", "any"):
        return text
    if text.isdigit() and 2 <= int(text) <= MAX_POLICY_COUNT:
        return str(int(text))
    raise ValueError(text)


def _on_off(text: str) -> bool:
    if text in ("on", "off"):
        return text == "on"
    raise ValueError(text)


def _language(text: str) -> str:
    code = text.replace("_", "-")
    if code in languages.choices():
        return code
    raise ValueError(text)


# Translators: the allowed values of a setting, completing "... use %(allowed)s." The
# values themselves (mute, all, on, open ...) are typed by people: keep them in English.
OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("action", "action", gettext_lazy("mute, kick, delete or observe"),
           _choice(*ProtectedGroup.Action.values)),
    Option("policy", "policy", gettext_lazy("all, any, or a number of channels from 2 to %(max)s"),
           _policy),
    Option("captcha", "captcha", gettext_lazy("on or off"), _on_off,
           lambda v: "on" if v else "off"),
    Option("captcha_timeout", "captcha_timeout", gettext_lazy("seconds from 30 to 3600"),
           _seconds(30, 3600)),
    Option("warning_delay", "warning_delete_after",
           gettext_lazy("seconds from 0 (keep) to 86400"), _seconds(0, 86400)),
    Option("fail", "fail_mode", gettext_lazy("open or closed"),
           _choice(*ProtectedGroup.FailMode.values)),
    Option("language", "language", gettext_lazy("auto or one of %(languages)s"), _language),
    Option("throttle", "throttle", gettext_lazy("seconds from 0 (answer every command) to 3600"),
           _seconds(0, 3600)),
)}
# The option a field is set by (the keyboard's older callback data names fields).
BY_FIELD = {o.field: o for o in OPTIONS.values()}


def parse_option(name: str, value: str) -> tuple[Option, Any]:
    """`/settings <name> <value>` as (option, value for the field).

    Raises ValidationError naming the settings (unknown name) or the allowed
    values (a value outside them); case and surrounding spaces do not matter.
    """
    option = OPTIONS.get(name.strip().lower()) or BY_FIELD.get(name.strip().lower())
    if option is None:
        # Translators: name: what was typed; names: the settings' names (in English).
        raise ValidationError(_("There is no setting “%(name)s”. Settings: %(names)s.") % {
            "name": name[:40], "names": ", ".join(OPTIONS)}, code="unknown_setting")
    try:
        return option, option.parse(value.strip().lower())
    except ValueError:
        # Translators: value: what was typed; name: the setting's name (in English);
        # allowed: its values, e.g. "on or off".
        raise ValidationError(_("“%(value)s” is not a value for %(name)s: use %(allowed)s.") % {
            "value": value[:40], "name": option.name,
            "allowed": str(option.allowed) % {
                "max": MAX_POLICY_COUNT, "languages": ", ".join(languages.shipped())}},
            code="invalid_value") from None


def language_name(code: str) -> str:
    """A group language as a person reads it: its own name, or what `auto` means."""
    if code == languages.AUTO:
        # Translators: a group's language when it follows its members.
        return pgettext("group language", "auto (the most common among members)")
    return dict(settings.LANGUAGES).get(code, code)


def shown(group: ProtectedGroup) -> list[tuple[str, str]]:
    """Every option with its current value, as typed."""
    return [(o.name, o.show(getattr(group, o.field))) for o in OPTIONS.values()]


def update_settings(group_pk: int, changes: dict[str, Any], *, actor: Actor) -> ProtectedGroup:
    """Apply `changes` ({field: value}) through the model's own validation.

    Raises ValidationError (unknown field, invalid value) and checks.Refused.
    Values equal to the current ones are no change: nothing is saved and no
    audit row is written (a PATCH of `{}` leaves no trace).
    """
    unknown = sorted(set(changes) - set(SETTING_FIELDS))
    if unknown:
        raise ValidationError({f: _("This setting does not exist.") for f in unknown})
    with transaction.atomic():
        group = ProtectedGroup.objects.select_for_update().get(pk=group_pk)
        checks.require(actor, "settings", group)
        fields = list(changes)
        before = audit.snapshot(group, fields=fields)
        for field, value in changes.items():
            setattr(group, field, value)
        group.full_clean(validate_unique=False, validate_constraints=False)
        after = audit.snapshot(group, fields=fields)
        if before == after:
            return group
        # save(), not update(): its signal drops every process's cached config.
        group.save()
        audit.record(AuditAction.GROUP_SETTINGS_CHANGED, group, by=actor, group_id=group.pk,
                     before=before, after=after)
    return group


aupdate_settings = sync_to_async(update_settings)
