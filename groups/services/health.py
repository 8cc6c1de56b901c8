"""What the bot can do where (my_chat_member, /doctor), /status and the check-up's verdict."""

from __future__ import annotations

from asgiref.sync import sync_to_async

from groups.models import EnforcedChannel, GroupMember, ProtectedGroup

# Rights the bot needs in a protected group, and in each linked channel.
GROUP_RIGHTS = ("can_restrict_members", "can_delete_messages")
GROUP_RIGHTS_OPTIONAL = ("can_invite_users",)
CHANNEL_RIGHTS = ("can_invite_users",)


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


def set_members_languages(bot_id: int, by_chat: dict[int, str]) -> None:
    """The most common language among each group's members, as the engine counted it
    (what `auto` means there). An observation, not a setting: no audit row."""
    for chat_id, language in by_chat.items():
        ProtectedGroup.objects.filter(bot_id=bot_id, chat_id=chat_id).update(
            members_language=language)


aset_members_languages = sync_to_async(set_members_languages)


def enabled_group_chat_ids(bot_id: int) -> list[int]:
    return list(ProtectedGroup.objects.filter(bot_id=bot_id, enabled=True)
                .values_list("chat_id", flat=True))


aenabled_group_chat_ids = sync_to_async(enabled_group_chat_ids)
