"""Rewrite audit rows written before the one vocabulary (bots.audit.AuditAction).

Names are copied here, not imported: a migration must keep meaning what it
meant when it was written.
"""

from django.db import migrations

LEGACY_ACTIONS = {
    "protect": "group.protected",
    "unlink_channel": "group.unprotected",
    "unprotect": "group.disabled",
    "settings": "group.settings_changed",
    "group.settings": "group.settings_changed",
    "enable": "group.enabled",
    "disable": "group.disabled",
    "command.unmute": "member.unmuted",
    "command.ban": "member.banned",
    "command.unban": "member.unbanned",
    "command.recheck": "member.rechecked",
    "bot.added": "bot.registered",
    "activate": "bot.enabled",
    "deactivate": "bot.disabled",
    "rotate_key": "bot.key_rotated",
    "queue_again": "command.queued_again",
    "revoke": "api_token.revoked",
    "add": "record.added",
    "change": "record.changed",
    "delete": "record.deleted",
}


def forwards(apps, schema_editor):
    AuditLog = apps.get_model("bots", "AuditLog")
    for old, new in LEGACY_ACTIONS.items():
        AuditLog.objects.filter(action=old).update(action=new)


def backwards(apps, schema_editor):
    # Several old names map to one new name; going back picks the first of them.
    AuditLog = apps.get_model("bots", "AuditLog")
    seen = set()
    for old, new in LEGACY_ACTIONS.items():
        if new not in seen:
            AuditLog.objects.filter(action=new).update(action=old)
            seen.add(new)


class Migration(migrations.Migration):
    dependencies = [("bots", "0002_update_mode_set_by_runbot")]

    operations = [migrations.RunPython(forwards, backwards)]
