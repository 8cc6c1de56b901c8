"""A group's settings: one change, validated by the model, audited once."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import transaction

from bots import audit
from bots.audit import Actor, AuditAction
from groups.models import ProtectedGroup
from groups.services import checks

# What an owner may tune; the Telegram keyboard offers the first three.
SETTING_FIELDS = ("action", "policy", "warning_delete_after", "fail_mode",
                  "join_request_timeout", "warning_text", "allowed_user_ids")


def update_settings(group_pk: int, changes: dict[str, Any], *, actor: Actor) -> ProtectedGroup:
    """Apply `changes` ({field: value}) through the model's own validation.

    Raises ValidationError (unknown field, invalid value) and checks.Refused.
    Values equal to the current ones are no change: nothing is saved and no
    audit row is written (a PATCH of `{}` leaves no trace).
    """
    unknown = sorted(set(changes) - set(SETTING_FIELDS))
    if unknown:
        raise ValidationError({f: "This setting does not exist." for f in unknown})
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
