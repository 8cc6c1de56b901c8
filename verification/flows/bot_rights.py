"""Flow 7: the bot's own membership and rights per chat; supergroup migration."""

from __future__ import annotations

import structlog
from telegram import Update

from groups.services import health, protection
from verification.engine import Engine

logger = structlog.get_logger(__name__)


async def on_my_chat_member(engine: Engine, update: Update) -> None:
    """Stored per chat: a protected group where the bot cannot restrict or delete
    shows up as needing attention (groups.services.record_bot_rights)."""
    cmu = update.my_chat_member
    new = cmu.new_chat_member
    rights = {k: v for k, v in new.to_dict().items() if k.startswith("can_") and v}
    await health.arecord_bot_rights(engine.bot_pk, cmu.chat.id, cmu.chat.type,
                                      new.status, rights)
    logger.info("bot.rights_changed", chat_id=cmu.chat.id, status=new.status,
                rights=sorted(rights))


async def on_migration(engine: Engine, update: Update) -> None:
    """A group became a supergroup: a new chat id, the same ProtectedGroup."""
    message = update.effective_message
    if message.migrate_to_chat_id:
        old, new = message.chat_id, message.migrate_to_chat_id
    else:
        old, new = message.migrate_from_chat_id, message.chat_id
    if await protection.amigrate_chat(engine.bot_pk, old, new):
        engine.board.move_chat(old, new)
        logger.info("group.migrated", old_chat_id=old, new_chat_id=new)
