"""Decide the common case from the raw update, before python-telegram-bot sees it.

Building PTB objects costs ~100 µs per update (DESIGN.md); most updates in a
busy group need nothing: a known subscriber speaking, any message in a chat
that is not protected, an admin, a bot. `fast_path(engine, raw)` answers True
when the update was fully decided from process memory (no I/O, no await) and
False when it must go through the handlers. It never guesses: anything
unknown, odd or actionable returns False.

The runtime supervisor calls it for every raw update (RuntimeOptions.fast_path).
"""

from __future__ import annotations

import time
from typing import Any

from bots import metrics
from bots.spool import storable
from groups.config import configs
from verification.engine import Engine
from verification.updates import CHANNEL_BOT_ID, GROUP_ANONYMOUS_BOT_ID, Person

GROUP_TYPES = ("group", "supergroup")
# A message with any of these keys is a service message or a command-like event
# that the handlers own (joins, migrations, pinned messages...).
SERVICE_KEYS = ("new_chat_members", "left_chat_member", "migrate_to_chat_id",
                "migrate_from_chat_id", "group_chat_created", "supergroup_chat_created")


def fast_path(engine: Engine, raw: dict[str, Any]) -> bool:
    """True when nothing needs doing for this update; it is then fully handled."""
    started = time.perf_counter()
    message = raw.get("message") or raw.get("edited_message")
    if not isinstance(message, dict):
        return False
    chat = message.get("chat")
    if not isinstance(chat, dict) or chat.get("type") not in GROUP_TYPES:
        return False
    if any(key in message for key in SERVICE_KEYS) or _is_command(message):
        return False
    known, config = configs.peek(engine.bot_pk, chat.get("id"))
    if not known:
        return False
    if config is None or not config.protecting:
        return _done("allow_unprotected", started)
    reason = _exempt(message, config)
    if reason is not None:
        return _done(reason, started)
    if "sender_chat" in message:
        return False  # posting as one's own channel: the handlers act on it
    sender = message.get("from")
    if not isinstance(sender, dict) or not isinstance(sender.get("id"), int):
        return False
    answers = engine.peek(sender["id"], config.channels)
    if answers is None or not all(answers.values()):
        return False
    engine.seen(config, _person(sender))
    if engine.admins_stale(config):
        engine.refresh_admins_soon(config)
    return _done("allow_subscribed", started)


def _exempt(message: dict[str, Any], config) -> str | None:
    """The screening of decisions.screen_message, for the cases that need no check."""
    if message.get("is_automatic_forward"):
        return "allow_automatic_forward"
    sender_chat = message.get("sender_chat")
    if isinstance(sender_chat, dict):
        if sender_chat.get("id") == config.chat_id:
            return "allow_anonymous_admin"
        chat_id = sender_chat.get("id")
        if config.channel(chat_id) is not None or chat_id == config.linked_chat_id:
            return "allow_linked_channel"
        return None
    sender = message.get("from")
    if not isinstance(sender, dict):
        return None
    user_id = sender.get("id")
    if sender.get("is_bot") or user_id in (GROUP_ANONYMOUS_BOT_ID, CHANNEL_BOT_ID):
        return "allow_bot"
    if user_id in config.admin_ids:
        return "allow_admin"
    if user_id in config.allowed_user_ids:
        return "allow_allow_list"
    return None


def _person(sender: dict[str, Any]) -> Person:
    """As Person.from_user: the ledger keeps the name (a blank one would overwrite it)."""
    username = sender.get("username")
    username = storable(username) if isinstance(username, str) else ""
    name = storable(" ".join(p for p in (sender.get("first_name"), sender.get("last_name"))
                             if isinstance(p, str) and p))
    return Person(sender["id"], name or (f"@{username}" if username else str(sender["id"])),
                  username)


def _is_command(message: dict[str, Any]) -> bool:
    text = message.get("text")
    return isinstance(text, str) and text.startswith("/")


def _done(outcome: str, started: float) -> bool:
    metrics.record_decision(outcome, time.perf_counter() - started)
    return True
