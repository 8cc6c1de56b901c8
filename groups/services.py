"""Domain operations on groups that touch several rows: plain sync functions.

The engine calls them through the `a*` wrappers defined beside each one
(`sync_to_async`, one thread hop per operation). None of them is on the hot
path of a known subscriber's message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from bots import audit
from bots.models import AuditLog
from groups import ledger
from groups.config import bump_version, configs
from groups.models import EnforcedChannel, GroupAdmin, GroupChannel, GroupMember, ProtectedGroup

# Rights the bot needs in a protected group, and in each linked channel.
GROUP_RIGHTS = ("can_restrict_members", "can_delete_messages")
GROUP_RIGHTS_OPTIONAL = ("can_invite_users",)
CHANNEL_RIGHTS = ("can_invite_users",)

SETTING_FIELDS = ("action", "warning_delete_after", "fail_mode", "join_request_timeout")
AUDITED_FIELDS = ["title", "enabled", *SETTING_FIELDS]


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelInfo:
    chat_id: int
    title: str
    username: str
    invite_link: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    telegram_id: int
    name: str


# --- the member ledger ----------------------------------------------------------
# Writes go through `groups.ledger.writer`, which keeps them on disk while the
# database is away and replays them in order when it answers.


def note_member(group_pk: int, user_id: int, *, name: str = "", username: str = "",
                status: str = GroupMember.Status.MEMBER) -> None:
    """Remember that this user is in the group (flow 4 needs to know)."""
    ledger.writer.write("note_member", group_pk=group_pk, user_id=user_id, name=name,
                        username=username, status=status)


anote_member = sync_to_async(note_member)


def mark_restricted(group_pk: int, user_id: int, *, name: str, username: str,
                    reason: str) -> None:
    """The ledger: Nezuko placed this restriction, so Nezuko may lift it.

    Kept through a database outage (`groups.ledger`): nobody Nezuko muted
    ends without this row.
    """
    ledger.writer.write("mark_restricted", group_pk=group_pk, user_id=user_id, name=name,
                        username=username, reason=reason)


amark_restricted = sync_to_async(mark_restricted)


def set_warning_message(group_pk: int, user_ids: Iterable[int], message_id: int | None) -> None:
    ledger.writer.write("set_warning_message", group_pk=group_pk, user_ids=list(user_ids),
                        message_id=message_id)


aset_warning_message = sync_to_async(set_warning_message)


def clear_restriction(group_pk: int, user_id: int) -> None:
    ledger.writer.write("clear_restriction", group_pk=group_pk, user_id=user_id)


aclear_restriction = sync_to_async(clear_restriction)


def hand_over_restriction(group_pk: int, user_id: int) -> None:
    """Someone else restricted this member: the restriction is theirs, not Nezuko's."""
    ledger.writer.write("hand_over_restriction", group_pk=group_pk, user_id=user_id)


ahand_over_restriction = sync_to_async(hand_over_restriction)


def set_member_status(group_pk: int, user_id: int, status: str) -> None:
    ledger.writer.write("set_member_status", group_pk=group_pk, user_id=user_id, status=status)


aset_member_status = sync_to_async(set_member_status)


def ledger_entry(group_pk: int, user_id: int) -> GroupMember | None:
    return GroupMember.objects.filter(group_id=group_pk, user_id=user_id).first()


aledger_entry = sync_to_async(ledger_entry)


def known_groups_for_channel(bot_id: int, channel_chat_id: int, user_id: int,
                             *, restricted_only: bool = False) -> list[int]:
    """Chat ids of this bot's protected groups that require the channel and know the user."""
    members = GroupMember.objects.filter(
        user_id=user_id,
        group__bot_id=bot_id,
        group__enabled=True,
        group__links__channel__chat_id=channel_chat_id,
    ).exclude(status__in=[GroupMember.Status.LEFT, GroupMember.Status.KICKED])
    if restricted_only:
        members = members.filter(restricted_by_nezuko=True)
    return list(members.values_list("group__chat_id", flat=True).distinct())


aknown_groups_for_channel = sync_to_async(known_groups_for_channel)


def known_member_ids(group_pk: int, limit: int) -> list[int]:
    """The most recently seen members still in the group."""
    return list(
        GroupMember.objects.filter(group_id=group_pk)
        .exclude(status__in=[GroupMember.Status.LEFT, GroupMember.Status.KICKED])
        .order_by("-last_seen_at")
        .values_list("user_id", flat=True)[:limit]
    )


aknown_member_ids = sync_to_async(known_member_ids)


def overdue_warnings(bot_id: int, limit: int = 200) -> list[tuple[int, int]]:
    """`(chat id, message id)` of warnings past their group's delay.

    Warnings delete themselves on a timer in the process that posted them; this
    finds those a restart left behind (the timer died with the process).
    """
    now = timezone.now()
    rows = (
        GroupMember.objects.filter(group__bot_id=bot_id, warning_message_id__isnull=False,
                                   group__warning_delete_after__gt=0,
                                   restricted_at__isnull=False)
        .values_list("group__chat_id", "warning_message_id", "restricted_at",
                     "group__warning_delete_after")[: limit * 5]
    )
    overdue = {(chat_id, message_id) for chat_id, message_id, at, delay in rows
               if (now - at).total_seconds() > delay}
    return sorted(overdue)[:limit]


aoverdue_warnings = sync_to_async(overdue_warnings)


def forget_warning(chat_id: int, message_id: int) -> None:
    ledger.writer.write("forget_warning", chat_id=chat_id, message_id=message_id)


aforget_warning = sync_to_async(forget_warning)


def restricted_user_ids(group_pk: int) -> list[int]:
    return list(
        GroupMember.objects.filter(group_id=group_pk, restricted_by_nezuko=True).values_list(
            "user_id", flat=True
        )
    )


arestricted_user_ids = sync_to_async(restricted_user_ids)


# --- setting a group up (the /protect family) -------------------------------------


def protect(bot_id: int, chat_id: int, *, title: str, username: str, is_forum: bool,
            channels: list[ChannelInfo], actor: Actor,
            linked_chat_id: int | None = None) -> ProtectedGroup:
    """Create or update the group, link the channels (adding to existing ones), enable it."""
    # Titles and names come from Telegram: keep only what the database can store.
    title, username = ledger.storable(title), ledger.storable(username)
    actor = Actor(actor.telegram_id, ledger.storable(actor.name))
    channels = [dataclasses.replace(c, title=ledger.storable(c.title),
                                    username=ledger.storable(c.username)) for c in channels]
    with transaction.atomic():
        group, created = ProtectedGroup.objects.get_or_create(
            bot_id=bot_id, chat_id=chat_id,
            defaults={"title": title[:255], "username": username or "", "is_forum": is_forum,
                      "setup_by_user_id": actor.telegram_id, "setup_by_name": actor.name[:255]},
        )
        before = audit.snapshot(group, fields=AUDITED_FIELDS) if not created else None
        group.title, group.username, group.is_forum = title[:255], username or "", is_forum
        group.linked_chat_id = linked_chat_id
        group.enabled = True
        if not group.setup_by_user_id:
            group.setup_by_user_id, group.setup_by_name = actor.telegram_id, actor.name[:255]
        group.save()
        for info in channels:
            channel, _ = EnforcedChannel.objects.update_or_create(
                bot_id=bot_id, chat_id=info.chat_id,
                defaults={"title": info.title[:255], "username": info.username or "",
                          "invite_link": info.invite_link, "bot_is_admin": True},
            )
            GroupChannel.objects.get_or_create(group=group, channel=channel)
        audit.record(
            "protect", group, source=AuditLog.Source.TELEGRAM,
            actor_telegram_id=actor.telegram_id, actor_name=actor.name, group_id=group.pk,
            before=before, after={**audit.snapshot(group, fields=AUDITED_FIELDS),
                                  "channels": [c.chat_id for c in channels]},
        )
    bump_version()
    return group


aprotect = sync_to_async(protect)


def unprotect(group_pk: int, *, channel_chat_id: int | None, actor: Actor) -> bool:
    """Unlink one channel, or switch protection off. Returns whether protection is off."""
    group = ProtectedGroup.objects.get(pk=group_pk)
    with transaction.atomic():
        if channel_chat_id is not None:
            GroupChannel.objects.filter(group=group, channel__chat_id=channel_chat_id).delete()
            action, after = "unlink_channel", {"channel": channel_chat_id}
        else:
            group.enabled = False
            group.save(update_fields=["enabled", "updated_at"])
            action, after = "unprotect", {"enabled": False}
        audit.record(action, group, source=AuditLog.Source.TELEGRAM,
                     actor_telegram_id=actor.telegram_id, actor_name=actor.name,
                     group_id=group.pk, after=after)
    bump_version()
    return not group.enabled or not group.links.exists()


aunprotect = sync_to_async(unprotect)


def update_setting(group_pk: int, field: str, value: str | int, *, actor: Actor) -> ProtectedGroup:
    """Change one setting through the model's own validation; recorded in AuditLog."""
    if field not in SETTING_FIELDS:
        raise ValueError(f"Unknown setting {field!r}.")
    group = ProtectedGroup.objects.get(pk=group_pk)
    before = audit.snapshot(group, fields=[field])
    setattr(group, field, value)
    group.full_clean(validate_unique=False, validate_constraints=False)
    group.save()
    audit.record("settings", group, source=AuditLog.Source.TELEGRAM,
                 actor_telegram_id=actor.telegram_id, actor_name=actor.name,
                 group_id=group.pk, before=before, after=audit.snapshot(group, fields=[field]))
    return group


aupdate_setting = sync_to_async(update_setting)


# --- what the bot can do where (my_chat_member, /doctor) ---------------------------


def missing_group_rights(status: str, rights: dict) -> list[str]:
    if status not in ("administrator", "creator"):
        return ["administrator", *GROUP_RIGHTS]
    return [r for r in GROUP_RIGHTS if not rights.get(r)]


def record_bot_rights(bot_id: int, chat_id: int, chat_type: str, status: str,
                      rights: dict) -> None:
    """Remember the bot's rights; flag a protected group where it cannot enforce.

    None of this is in GroupConfig, so the cached configuration stays: a restrict
    refused for missing rights lands here once per message of a raid.
    """
    if chat_type == "channel":
        EnforcedChannel.objects.filter(bot_id=bot_id, chat_id=chat_id).update(
            bot_is_admin=status == "administrator"
        )
        _flag_groups_of_channel(bot_id, chat_id, ok=status == "administrator")
        return
    missing = missing_group_rights(status, rights)
    ProtectedGroup.objects.filter(bot_id=bot_id, chat_id=chat_id).update(
        bot_status=status,
        bot_rights=rights,
        needs_attention=bool(missing),
        attention_reason=("Bot lacks: " + ", ".join(missing))[:255] if missing else "",
    )


arecord_bot_rights = sync_to_async(record_bot_rights)


def _flag_groups_of_channel(bot_id: int, channel_chat_id: int, *, ok: bool) -> None:
    groups = ProtectedGroup.objects.filter(bot_id=bot_id, links__channel__chat_id=channel_chat_id)
    if ok:
        groups.filter(attention_reason__startswith="Bot is not admin in channel").update(
            needs_attention=False, attention_reason=""
        )
    else:
        groups.update(needs_attention=True,
                      attention_reason=f"Bot is not admin in channel {channel_chat_id}")


ADMIN_FIELDS = ("user_id", "username", "first_name", "is_creator", "is_anonymous",
                "can_restrict_members")


def replace_admins(group_pk: int, admins: list[dict]) -> None:
    """Store the group's admin list as fetched (getChatAdministrators).

    Every active group does this every few minutes and the list rarely changes:
    an unchanged list only moves the timestamps and drops this group's cached
    configuration, instead of every group's in every process.
    """
    now = timezone.now()
    admins = [{**a, "first_name": ledger.storable(a["first_name"]),
               "username": ledger.storable(a["username"])} for a in admins]
    stored = set(GroupAdmin.objects.filter(group_id=group_pk).values_list(*ADMIN_FIELDS))
    if stored == {tuple(a[f] for f in ADMIN_FIELDS) for a in admins}:
        with transaction.atomic():
            GroupAdmin.objects.filter(group_id=group_pk).update(refreshed_at=now)
            ProtectedGroup.objects.filter(pk=group_pk).update(admins_refreshed_at=now)
        key = ProtectedGroup.objects.filter(pk=group_pk).values_list("bot_id", "chat_id").first()
        if key is not None:
            configs.drop(*key)
        return
    with transaction.atomic():
        GroupAdmin.objects.filter(group_id=group_pk).delete()
        GroupAdmin.objects.bulk_create(
            GroupAdmin(group_id=group_pk, refreshed_at=now, **a) for a in admins
        )
        ProtectedGroup.objects.filter(pk=group_pk).update(admins_refreshed_at=now)
    bump_version()


areplace_admins = sync_to_async(replace_admins)


def migrate_chat(bot_id: int, old_chat_id: int, new_chat_id: int) -> bool:
    """A group that became a supergroup keeps its protection under the new id."""
    if ProtectedGroup.objects.filter(bot_id=bot_id, chat_id=new_chat_id).exists():
        return False
    count = ProtectedGroup.objects.filter(bot_id=bot_id, chat_id=old_chat_id).update(
        chat_id=new_chat_id, is_forum=False
    )
    bump_version()
    return count > 0


amigrate_chat = sync_to_async(migrate_chat)


def group_status(group_pk: int) -> dict:
    group = ProtectedGroup.objects.get(pk=group_pk)
    return {
        "group": group,
        "channels": list(EnforcedChannel.objects.filter(links__group=group).order_by("links__pk")),
        "restricted": GroupMember.objects.filter(group=group, restricted_by_nezuko=True).count(),
        "owed": GroupMember.objects.filter(group=group).exclude(owed_action="").count(),
        "missing_rights": missing_group_rights(group.bot_status or "administrator",
                                               group.bot_rights or {})
        if group.bot_status else [],
    }


agroup_status = sync_to_async(group_status)


def set_attention(group_pk: int, problems: list[str]) -> None:
    """The scheduled check-up's verdict: flagged with the first problems, or cleared."""
    ProtectedGroup.objects.filter(pk=group_pk).update(
        needs_attention=bool(problems), attention_reason="; ".join(problems)[:255]
    )


aset_attention = sync_to_async(set_attention)


def enabled_group_chat_ids(bot_id: int) -> list[int]:
    return list(ProtectedGroup.objects.filter(bot_id=bot_id, enabled=True)
                .values_list("chat_id", flat=True))


aenabled_group_chat_ids = sync_to_async(enabled_group_chat_ids)
