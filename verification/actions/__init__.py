"""Carrying decisions out: the only package that calls the Bot API.

Every call states its priority for the bot's rate limiter (P0 answers a
person, P1 enforces, P2 is bulk). Telegram errors are handled here, close to
the call, and turned into events and log lines; nothing raises into PTB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from groups.config import GroupConfig
from verification.actions.joins import approve_join, ask_to_join, decline_join
from verification.actions.messages import (
    answer,
    delete_message,
    edit,
    edit_private,
    reply,
    send,
)
from verification.actions.moderation import (
    ban,
    lift_all,
    reject_sender_chat,
    restrict,
    unban,
    unmute,
)
from verification.actions.reads import (
    default_permissions,
    fetch_admins,
    fetch_membership,
    get_chat,
    get_member,
    invite_link,
)
from verification.actions.warning_messages import schedule_edit, unwarn, warn
from verification.decisions import (
    Allow,
    ApproveJoin,
    AskToJoin,
    Decision,
    RejectSenderChat,
    Restrict,
    Unmute,
)

if TYPE_CHECKING:
    from verification.engine import Engine

__all__ = [
    "answer", "apply", "approve_join", "ask_to_join", "ban", "decline_join",
    "default_permissions", "unban",
    "delete_message", "edit", "edit_private", "fetch_admins", "fetch_membership", "get_chat",
    "get_member", "invite_link", "lift_all", "reject_sender_chat", "reply", "restrict",
    "schedule_edit", "send", "unmute", "unwarn", "warn",
]


async def apply(engine: Engine, decision: Decision, config: GroupConfig | None,
                *, started: float | None = None, cache_hit: bool | None = None) -> None:
    """Carry out one decision."""
    if isinstance(decision, Allow) or config is None:
        return
    if isinstance(decision, Restrict):
        await restrict(engine, decision, config, started=started, cache_hit=cache_hit)
    elif isinstance(decision, RejectSenderChat):
        await reject_sender_chat(engine, decision, config)
    elif isinstance(decision, Unmute):
        await unmute(engine, decision, config, started=started)
    elif isinstance(decision, ApproveJoin):
        await approve_join(engine, decision, config, started=started)
    elif isinstance(decision, AskToJoin):
        await ask_to_join(engine, decision, config)
