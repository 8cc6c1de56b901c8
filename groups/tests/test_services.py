"""The domain services: validate, check the actor's rights, apply, audit once."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError

from bots import audit, registration
from bots.audit import Actor, AuditAction
from bots.models import AuditLog, BotCommand
from groups import languages
from groups.models import GroupAdmin, ProtectedGroup
from groups.rights import AdminStanding
from groups.services import checks, members, protection, settings
from tests.factories import make_bot, make_group

pytestmark = pytest.mark.django_db

ANN, BEN, CY = 501, 502, 503  # creator; admin without 'Ban users'; nobody


@pytest.fixture
def group() -> ProtectedGroup:
    group = make_group(title="Cats")
    GroupAdmin.objects.create(group=group, user_id=ANN, is_creator=True)
    GroupAdmin.objects.create(group=group, user_id=BEN, can_restrict_members=False)
    return group


def person(telegram_id: int, name: str = "Ann", **fields) -> Actor:
    return Actor(AuditLog.Source.DASHBOARD, name=name, telegram_id=telegram_id, **fields)


def test_a_setting_change_is_validated_by_the_model_and_nothing_is_written(group):
    with pytest.raises(ValidationError) as refused:
        settings.update_settings(group.pk, {"action": "explode"}, actor=person(ANN))
    assert "action" in refused.value.message_dict
    with pytest.raises(ValidationError):
        settings.update_settings(group.pk, {"owner": 1}, actor=person(ANN))
    group.refresh_from_db()
    assert group.action == "mute" and not AuditLog.objects.exists()


def test_an_empty_or_unchanged_setting_writes_no_audit_row(group):
    settings.update_settings(group.pk, {}, actor=person(ANN))
    settings.update_settings(group.pk, {"action": "mute"}, actor=person(ANN))
    assert not AuditLog.objects.exists()
    settings.update_settings(group.pk, {"action": "kick", "fail_mode": "closed"},
                             actor=person(ANN))
    entry = AuditLog.objects.get()
    assert entry.action == "group.settings_changed"
    assert (entry.before, entry.after) == ({"action": "mute"}, {"action": "kick"})


@pytest.mark.parametrize("actor,reason", [
    (person(CY), "not an administrator"),
    (person(BEN), "'Ban users'"),
    (person(ANN, read_only=True), "read-only"),
    # A command passes what Telegram said just now; it wins over the cached list.
    (person(ANN, standing=AdminStanding(is_admin=True, is_creator=False,
                                        can_restrict_members=False)), "'Ban users'"),
])
def test_every_change_checks_the_actors_rights(group, actor, reason):
    attempts = [
        lambda: settings.update_settings(group.pk, {"action": "kick"}, actor=actor),
        lambda: protection.set_group_enabled(group.pk, False, actor=actor),
        lambda: members.ban(group.pk, 42, actor=actor),
        lambda: members.unmute(group.pk, 42, actor=actor),
    ]
    for attempt in attempts:
        with pytest.raises(checks.Refused, match=reason):
            attempt()
    group.refresh_from_db()
    assert group.enabled and group.action == "mute"
    assert not AuditLog.objects.exists() and not BotCommand.objects.exists()


def test_staff_and_the_system_may_change_any_group(group):
    protection.set_group_enabled(group.pk, False, actor=Actor.system())
    assert AuditLog.objects.get().action == "group.disabled"


def test_a_refused_first_protect_leaves_no_group_behind():
    bot = make_bot()
    stranger = Actor(AuditLog.Source.TELEGRAM, name="Cy", telegram_id=CY, standing=None)
    with pytest.raises(checks.Refused):
        protection.protect(bot.pk, -100777, title="New", username="", is_forum=False,
                           channels=[protection.ChannelInfo(-100888, "News", "news")],
                           actor=stranger)
    assert not ProtectedGroup.objects.exists() and not AuditLog.objects.exists()


def test_a_member_change_needs_a_telegram_user_id(group):
    for bad in (0, -5, 2**53, "bob"):
        with pytest.raises(ValidationError):
            members.unmute(group.pk, bad, actor=person(ANN))
    assert not BotCommand.objects.exists()


def test_only_a_bots_owner_or_staff_switches_it_off(django_user_model):
    owner = django_user_model.objects.create_user("owner")
    other = django_user_model.objects.create_user("other")
    bot = make_bot(owner=owner)
    with pytest.raises(PermissionDenied):
        registration.set_bot_active(bot.pk, False, actor=Actor("api", user=other))
    registration.set_bot_active(bot.pk, False, actor=Actor("api", user=owner))
    registration.set_bot_active(bot.pk, False, actor=Actor("api", user=owner))  # no change
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["bot.disabled"]


def test_the_audit_trail_refuses_a_name_outside_the_vocabulary():
    with pytest.raises(ValueError, match="not an AuditAction"):
        audit.record("disable", source="admin")
    assert audit.action_label("disable") == "Protection disabled"  # an old row still reads
    assert audit.action_label("bot.registered") == "Bot registered"


def test_the_migration_renames_every_old_action_to_its_successor():
    migration = importlib.import_module("bots.migrations.0003_audit_action_vocabulary")
    assert migration.LEGACY_ACTIONS == {k: str(v) for k, v in audit.LEGACY_ACTIONS.items()}
    for old in migration.LEGACY_ACTIONS:
        AuditLog.objects.create(source="system", action=old, object_type="x")
    AuditLog.objects.create(source="system", action="api_token.created", object_type="x")
    migration.forwards(apps, None)
    assert set(AuditLog.objects.values_list("action", flat=True)) <= set(AuditAction.values)
    assert AuditLog.objects.filter(action="group.disabled").count() == 2  # disable, unprotect


def test_a_groups_language_and_its_custom_warnings_go_through_the_same_service(group):
    assert group.language == "auto"  # the default: the members' most common
    settings.update_settings(group.pk, {"language": "fa", "warning_texts": {
        "fa": "{mention}، برای گفتگو در {group} به {channels} بپیوندید."}}, actor=person(ANN))
    group.refresh_from_db()
    assert group.language == "fa" and set(group.warning_texts) == {"fa"}
    assert AuditLog.objects.get().after["language"] == "fa"
    for changes, field in [
        ({"language": "de"}, "language"),  # no catalog: not a language Nezuko speaks
        ({"warning_texts": {"de": "Hallo {mention}"}}, "warning_texts"),
        ({"warning_texts": {"es": "Hola {nombre}"}}, "warning_texts"),
        ({"warning_texts": {"es": "x" * 1001}}, "warning_texts"),
        ({"warning_texts": ["es"]}, "warning_texts"),
    ]:
        with pytest.raises(ValidationError) as refused:
            settings.update_settings(group.pk, changes, actor=person(ANN))
        assert field in refused.value.message_dict, changes
    assert AuditLog.objects.count() == 1


def test_the_language_migration_keeps_each_groups_language_where_a_catalog_speaks_it():
    migration = importlib.import_module("groups.migrations.0007_group_languages")
    assert set(migration.SHIPPED) == set(languages.shipped())
    kept, regional, unspoken = (make_group(title=t) for t in ("Kept", "Regional", "Unspoken"))
    for group, code in ((kept, "en"), (regional, "pt"), (unspoken, "de")):
        ProtectedGroup.objects.filter(pk=group.pk).update(language=code)
    migration.serve_only_shipped_languages(apps, None)
    assert [ProtectedGroup.objects.get(pk=g.pk).language for g in (kept, regional, unspoken)] \
        == ["en", "pt-br", "auto"]
