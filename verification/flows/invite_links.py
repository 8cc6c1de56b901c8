"""A group's own invite link per channel: made at /protect, retried by the check-up
while missing, revoked by /unprotect (docs/growth.md)."""

from __future__ import annotations

from groups.config import GroupConfig
from verification import recording
from verification.actions.invite_links import create_invite_link, revoke_invite_link
from verification.engine import Engine


async def ensure_invite_links(engine: Engine, config: GroupConfig) -> int:
    """Make the group's own link to every linked channel that has none yet; returns
    how many were made. A refusal (no "Invite users" right) is tried again by the
    next check-up; the channel's own link serves meanwhile."""
    made = 0
    for channel in config.channels:
        if channel.has_own_link:
            continue
        url = await create_invite_link(engine, channel.chat_id, config.title)
        if url:
            await recording.invite_link_made(config, channel, url)
            made += 1
    return made


async def revoke_invite_links(engine: Engine, group_pk: int,
                              links: list[tuple[int, str]]) -> int:
    """Revoke links read before the group stopped requiring their channels."""
    revoked = [(chat_id, url) for chat_id, url in links
               if await revoke_invite_link(engine, chat_id, url)]
    if revoked:
        await recording.invite_links_revoked(group_pk, revoked)
    return len(revoked)

