"""Decide the common case from the raw update, before python-telegram-bot sees it.

Building PTB objects costs ~100 µs per update (DESIGN.md); most updates in a
busy group need nothing: a known subscriber speaking, any message in a chat
that is not protected, an admin, a bot. `fast_path(engine, raw)` answers True
when the update was fully decided from process memory and False when it must
go through the handlers.

The contract, which the runtime relies on (`RuntimeOptions.fast_path`, called
for every raw update before it is journalled):

* True only for an update the handlers would have allowed and left alone, so
  taking it here changes nothing but the cost. It holds no rule of its own:
  the message is read into the same `IncomingMessage` the handlers build
  (`IncomingMessage.from_raw`) and judged by the same `screen_message` and
  `decide_membership`.
* No I/O and no await: group configuration and membership answers come from
  process memory only (`configs.peek`, `Engine.peek`); anything not known
  there goes to the handlers, which may ask.
* It never guesses: a malformed field, a service message, a command, a
  restriction to make, or anything else that needs doing returns False.
"""

from __future__ import annotations

import time
from typing import Any

from bots import metrics
from groups.config import configs
from verification import recording, telegram_reads
from verification.decisions import (
    Allow,
    Check,
    decide_membership,
    known_enough,
    outcome_label,
    screen_message,
)
from verification.engine import Engine
from verification.updates import IncomingMessage

GROUP_TYPES = ("group", "supergroup")
# Which updates the handlers own: service messages (joins, migrations...) and
# commands. This is routing, not a rule: it mirrors the handlers' filters.
SERVICE_KEYS = ("new_chat_members", "left_chat_member", "migrate_to_chat_id",
                "migrate_from_chat_id", "group_chat_created", "supergroup_chat_created")


def fast_path(engine: Engine, raw: dict[str, Any]) -> bool:
    """True when nothing needs doing for this update; it is then fully handled."""
    started = time.perf_counter()
    data = raw.get("message")
    is_edit = data is None
    if is_edit:
        data = raw.get("edited_message")
    if not isinstance(data, dict) or not _for_the_rules(data):
        return False
    message = IncomingMessage.from_raw(data, is_edit=is_edit)
    if message is None:
        return False
    known, config = configs.peek(engine.bot_pk, message.chat_id)
    if not known:
        return False
    decision = screen_message(message, config)
    if isinstance(decision, Check):
        answers = engine.peek(decision.person.id, decision.channels,
                              partial=config.policy != "all")
        if answers is None or not known_enough(config, decision.channels, answers):
            return False  # not known in memory: the handlers ask Telegram
        decision = decide_membership(decision, config, answers, reason="message",
                                     message=message)
        if isinstance(decision, Allow):
            # As the handlers do for a checked member: note them, keep admins fresh.
            recording.seen(engine, config, message.sender)
            if telegram_reads.admins_stale(config):
                telegram_reads.refresh_admins_soon(engine, config)
    if not isinstance(decision, Allow):
        return False
    metrics.record_decision(outcome_label(decision), time.perf_counter() - started)
    return True


def _for_the_rules(message: dict[str, Any]) -> bool:
    """A plain message in a group: what the enforcement handler (flow 1) would get."""
    chat = message.get("chat")
    if not isinstance(chat, dict) or chat.get("type") not in GROUP_TYPES:
        return False
    if any(key in message for key in SERVICE_KEYS):
        return False
    text = message.get("text")
    return not (isinstance(text, str) and text.startswith("/"))
