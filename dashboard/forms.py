"""Forms validate on the server; their errors render inline beside the field."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, pgettext_lazy

from bots import crypto
from groups.models import MAX_POLICY_COUNT, ProtectedGroup, policy_label

PLACEHOLDERS = frozenset({"mention", "group", "channels"})
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MAX_ALLOWED_USERS = 500


def parse_user_ids(text: str) -> list[int]:
    """Telegram user ids separated by commas, spaces or new lines."""
    ids: list[int] = []
    for part in re.split(r"[\s,;]+", text.strip()):
        if not part:
            continue
        if not re.fullmatch(r"\d{1,15}", part):
            raise forms.ValidationError(
                _("“%(part)s” is not a Telegram user id (digits only)."),
                params={"part": part[:30]},
            )
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) > MAX_ALLOWED_USERS:
        raise forms.ValidationError(
            ngettext_lazy("At most %(limit)s user id.", "At most %(limit)s user ids.", "limit"),
            params={"limit": MAX_ALLOWED_USERS},
        )
    return ids


class UserIdListField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value: object) -> object:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: object) -> list[int]:
        return parse_user_ids(str(value or ""))


POLICIES = ("all", "any", *(str(n) for n in range(2, MAX_POLICY_COUNT + 1)))


def policy_choices() -> list[tuple[str, str]]:
    # Built per form, not at import: the labels are in the language of each page.
    return [(p, policy_label(p).capitalize()) for p in POLICIES]


class GroupSettingsForm(forms.ModelForm):
    """Every option of `groups.services.settings.OPTIONS`, each labelled with the name
    `/settings <name> <value>` takes in Telegram. Those names are what an owner types
    in Telegram, so they stay as they are in every language; the help texts say in
    the page's language what each option does."""

    policy = forms.ChoiceField(
        choices=policy_choices, label="policy",
        help_text=_("Which linked channels a member needs: all, any one, or at least N."),
    )
    allowed_user_ids = UserIdListField(
        required=False, label=_("Allow-list"),
        help_text=_("Telegram user ids never restricted here, separated by commas."),
    )
    warning_delete_after = forms.IntegerField(
        min_value=0, max_value=86400, label="warning_delay",
        help_text=_("Seconds before a warning removes itself; 0 keeps it."),
    )
    captcha_timeout = forms.IntegerField(
        min_value=30, max_value=3600, label="captcha_timeout",
        help_text=_("Seconds a newcomer has to answer before being removed (30 to 3600)."),
    )
    throttle = forms.IntegerField(
        min_value=0, max_value=3600, label="throttle",
        help_text=_("Seconds between two answers to one member's commands (admins excepted); "
                    "0 answers every command."),
    )
    language = forms.CharField(
        max_length=8, label="language",
        # Translators: "auto" is a value typed as is, and the codes too; keep them untranslated.
        help_text=_("auto (the most common among the members) or one of en, es, pt-br, ru, uk, "
                    "id, hi, fa, ar, tr: the language of messages to the whole group."),
    )

    class Meta:
        model = ProtectedGroup
        fields = ["action", "policy", "captcha", "captcha_timeout", "warning_delete_after",
                  "fail_mode", "language", "throttle", "warning_text", "warning_texts",
                  "allowed_user_ids"]
        labels = {"action": "action", "captcha": "captcha", "fail_mode": "fail",
                  "warning_text": _("Warning text"),
                  "warning_texts": _("Warning text per language"),
                  "allowed_user_ids": _("Allow-list")}
        widgets = {"warning_text": forms.Textarea(attrs={"rows": 3, "maxlength": 1000}),
                   "warning_texts": forms.Textarea(attrs={"rows": 3})}

    def clean_warning_texts(self) -> dict:
        return self.cleaned_data.get("warning_texts") or {}  # left empty: none

    def clean_language(self) -> str:
        return self.cleaned_data["language"].strip().lower()

    def clean_warning_text(self) -> str:
        text = self.cleaned_data.get("warning_text", "").strip()
        if len(text) > 1000:
            raise forms.ValidationError(
                _("Keep the warning under %(limit)s characters."), params={"limit": 1000})
        # The engine replaces exactly "{mention}", "{group}" and "{channels}", as typed;
        # anything else in braces would reach members verbatim, so it is refused here.
        unknown = sorted({
            "{" + name + "}" for name in PLACEHOLDER.findall(text) if name not in PLACEHOLDERS
        })
        rest = PLACEHOLDER.sub("", text)
        if "{" in rest or "}" in rest:
            raise forms.ValidationError(
                # Translators: {mention}, {group} and {channels} are typed as is: keep them.
                _("Unbalanced braces: braces are only for {mention}, {group} and {channels}.")
            )
        if unknown:
            raise forms.ValidationError(
                # Translators: {mention}, {group} and {channels} are typed as is: keep them.
                ngettext_lazy("Unknown placeholder %(names)s; use {mention}, {group} or "
                              "{channels}.",
                              "Unknown placeholders %(names)s; use {mention}, {group} or "
                              "{channels}.", "count"),
                params={"names": ", ".join(unknown), "count": len(unknown)},
            )
        return text


class AddBotForm(forms.Form):
    token = forms.CharField(
        label=_("Bot token"), strip=True, max_length=100,
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "placeholder": "123456:ABC-…"}),
        help_text=_(
            "From @BotFather. Checked with Telegram, stored encrypted, never shown again."
        ),
    )

    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        if not crypto.is_token_format(token):
            raise forms.ValidationError(
                _("This does not look like a bot token (123456:ABC-…).")
            )
        return token


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label=_("Token name"))


class GroupFilterForm(forms.Form):
    SORTS = {
        "title": "title", "-title": "-title", "created": "created_at", "-created": "-created_at",
        "members": "restricted_count", "-members": "-restricted_count",
    }
    q = forms.CharField(required=False, max_length=100)
    status = forms.ChoiceField(
        required=False,
        choices=[("", pgettext_lazy("groups filter", "All")),
                 ("enabled", pgettext_lazy("groups filter", "Enabled")),
                 ("disabled", pgettext_lazy("groups filter", "Disabled")),
                 ("attention", pgettext_lazy("groups filter", "Needs attention"))],
    )
    sort = forms.ChoiceField(required=False, choices=[(k, k) for k in SORTS])
    page = forms.IntegerField(required=False, min_value=1)


class AnalyticsForm(forms.Form):
    PERIODS = {"1h": 1 / 24, "24h": 1, "7d": 7, "30d": 30}
    period = forms.ChoiceField(required=False, choices=[(k, k) for k in PERIODS])
    granularity = forms.ChoiceField(required=False, choices=[("hour", "hour"), ("day", "day")])
    group = forms.IntegerField(required=False, min_value=1)
