"""The clean-ups `verification.maintenance` runs every minute for each bot."""

from __future__ import annotations

from groups.services import ledger_reads
from verification import actions, recording
from verification.engine import Engine
from verification.joinrequests import aclaim_expired
from verification.updates import Person


async def sweep_join_requests(engine: Engine) -> int:
    """Decline requests that waited too long; returns how many."""
    expired = await aclaim_expired(engine.bot_pk)
    for chat_id, _group_pk, user_id, name in expired:
        config = await engine.config(chat_id)
        if config is not None:
            await actions.decline_join(engine, config, Person(user_id, name))
    return len(expired)


async def sweep_warnings(engine: Engine) -> int:
    """Delete warnings a restart left past their delay; returns how many.

    A warning's own timer lives in the process that posted it; the ledger row
    keeps the message id, so a later process can still remove it.
    """
    removed = 0
    for chat_id, message_id in await ledger_reads.aoverdue_warnings(engine.bot_pk):
        if engine.board.of_message(chat_id, message_id) is not None:
            continue  # alive here, with its own timer
        await actions.delete_message(engine, chat_id, message_id)
        await recording.warning_gone(chat_id, message_id)
        removed += 1
    return removed
