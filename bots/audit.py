"""One helper to write AuditLog rows, whoever makes the change."""

from typing import Any

from django.db import models
from django.forms.models import model_to_dict

from bots.models import AuditLog

# Fields that are never copied into the audit trail.
SECRET_FIELDS = {"encrypted_token", "token_fingerprint", "password", "token_hash"}


def snapshot(instance: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """A JSON-safe dict of an instance's editable fields, secrets left out."""
    data = model_to_dict(instance, fields=fields)
    return {
        key: value if isinstance(value, str | int | float | bool | type(None) | list | dict)
        else str(value)
        for key, value in data.items()
        if key not in SECRET_FIELDS
    }


def changed(before: dict | None, after: dict | None) -> tuple[dict, dict]:
    """Only the keys whose values differ, so entries stay readable."""
    before, after = before or {}, after or {}
    keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def record(
    action: str,
    obj: models.Model | None = None,
    *,
    source: str,
    actor=None,
    actor_telegram_id: int | None = None,
    actor_name: str = "",
    before: dict | None = None,
    after: dict | None = None,
    group_id: int | None = None,
    object_type: str = "",
) -> AuditLog:
    if before is not None and after is not None:
        before, after = changed(before, after)
    if actor is not None and not actor_name:
        actor_name = actor.get_username()
    return AuditLog.objects.create(
        source=source,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_telegram_id=actor_telegram_id,
        actor_name=actor_name[:255],
        action=action,
        object_type=object_type or (obj._meta.model_name if obj is not None else ""),
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:255] if obj is not None else "",
        group_id=group_id,
        before=before,
        after=after,
    )
