"""Protecting a group: /protect, /unprotect @channel, enable/disable, chat migration;
and the group's own invite links to its channels (made and revoked by the engine).

Each change checks the actor's rights (`checks.require`), applies in one
transaction with its audit row, and bumps the configuration version so every
runbot drops its cached GroupConfig.
"""

from __future__ import annotations

import dataclasses

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from bots import audit
from bots.audit import Actor, AuditAction
from groups import ledger
from groups.config import bump_version
from groups.models import EnforcedChannel, GroupChannel, ProtectedGroup
from groups.services import checks
from groups.services.settings import SETTING_FIELDS

AUDITED_FIELDS = ["title", "enabled", *SETTING_FIELDS]


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelInfo:
    chat_id: int
    title: str
    username: str
    invite_link: str = ""


def protect(bot_id: int, chat_id: int, *, title: str, username: str, is_forum: bool,
            channels: list[ChannelInfo], actor: Actor,
            linked_chat_id: int | None = None) -> ProtectedGroup:
    """Create or update the group, link the channels (adding to existing ones), enable it."""
    if not channels:
        raise ValueError("Protecting a group needs at least one channel.")
    # Titles and names come from Telegram: keep only what the database can store.
    title, username = ledger.storable(title), ledger.storable(username)
    actor = dataclasses.replace(actor, name=ledger.storable(actor.name))
    channels = [dataclasses.replace(c, title=ledger.storable(c.title),
                                    username=ledger.storable(c.username)) for c in channels]
    with transaction.atomic():
        group, created = ProtectedGroup.objects.get_or_create(
            bot_id=bot_id, chat_id=chat_id,
            defaults={"title": title[:255], "username": username or "", "is_forum": is_forum,
                      "setup_by_user_id": actor.telegram_id, "setup_by_name": actor.name[:255]},
        )
        # Checked inside the transaction: a refused first /protect leaves no row behind.
        checks.require(actor, "protect", group)
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
            AuditAction.GROUP_PROTECTED, group, by=actor, group_id=group.pk, before=before,
            after={**audit.snapshot(group, fields=AUDITED_FIELDS),
                   "channels": [c.chat_id for c in channels]},
        )
    bump_version()
    return group


aprotect = sync_to_async(protect)


def unprotect(group_pk: int, *, channel_chat_id: int | None, actor: Actor) -> bool:
    """Stop requiring one channel, or (no channel) switch protection off.

    Switching off is the same change as disabling the group anywhere else
    (`group.disabled`). Returns whether protection is now off.
    """
    if channel_chat_id is None:
        set_group_enabled(group_pk, False, actor=actor)
        return True
    with transaction.atomic():
        group = ProtectedGroup.objects.select_for_update().get(pk=group_pk)
        checks.require(actor, "unprotect", group)
        removed, _ = GroupChannel.objects.filter(
            group=group, channel__chat_id=channel_chat_id).delete()
        if removed:
            audit.record(AuditAction.GROUP_UNPROTECTED, group, by=actor, group_id=group.pk,
                         after={"channel": channel_chat_id})
    bump_version()
    return not group.enabled or not group.links.exists()


aunprotect = sync_to_async(unprotect)


def set_group_enabled(group_pk: int, enabled: bool, *, actor: Actor) -> ProtectedGroup:
    """Switch protection on or off; switching to what it already is changes nothing."""
    with transaction.atomic():
        group = ProtectedGroup.objects.select_for_update().get(pk=group_pk)
        checks.require(actor, "enable" if enabled else "disable", group)
        if group.enabled == enabled:
            return group
        group.enabled = enabled
        # save(), not update(): its signal drops every process's cached config.
        group.save(update_fields=["enabled", "updated_at"])
        audit.record(AuditAction.GROUP_ENABLED if enabled else AuditAction.GROUP_DISABLED,
                     group, by=actor, group_id=group.pk,
                     before={"enabled": not enabled}, after={"enabled": enabled})
    return group


aset_group_enabled = sync_to_async(set_group_enabled)


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


# --- the group's own invite links (docs/growth.md) --------------------------------------

# Telegram's limit for an invite link's name.
INVITE_LINK_NAME_MAX = 32


def invite_link_name(group_title: str) -> str:
    """"Nezuko: <group title>", cut to Telegram's 32 characters: the channel's admins
    see in their link list which group brings whom."""
    return f"Nezuko: {group_title}".strip()[:INVITE_LINK_NAME_MAX]


def store_invite_link(group_pk: int, channel_chat_id: int, url: str) -> bool:
    """Remember the group's own link to a channel; Join buttons use it from now on."""
    stored = GroupChannel.objects.filter(
        group_id=group_pk, channel__chat_id=channel_chat_id, invite_link="",
    ).update(invite_link=url[:255], invite_link_created_at=timezone.now())
    if stored:
        bump_version()  # GroupConfig's join_url changed
    return bool(stored)


astore_invite_link = sync_to_async(store_invite_link)


def invite_links(group_pk: int, channel_chat_id: int | None = None) -> list[tuple[int, str]]:
    """`(channel chat id, link)` of the group's own links (one channel's, or all)."""
    links = GroupChannel.objects.filter(group_id=group_pk).exclude(invite_link="")
    if channel_chat_id is not None:
        links = links.filter(channel__chat_id=channel_chat_id)
    return list(links.values_list("channel__chat_id", "invite_link"))


ainvite_links = sync_to_async(invite_links)


def forget_invite_links(group_pk: int, links: list[tuple[int, str]]) -> int:
    """The links were revoked: Join buttons fall back to the channel's own link."""
    forgotten = GroupChannel.objects.filter(
        group_id=group_pk, invite_link__in=[url for _, url in links],
    ).update(invite_link="", invite_link_created_at=None)
    if forgotten:
        bump_version()
    return forgotten


aforget_invite_links = sync_to_async(forget_invite_links)
