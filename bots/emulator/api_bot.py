"""Bot API methods about the bot itself: getMe, updates, webhooks, commands."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from bots.emulator.api import SECRET_TOKEN_RE, Params, method, need
from bots.emulator.errors import bad_request
from bots.emulator.state import User
from bots.emulator.updates import Webhook

if TYPE_CHECKING:
    from bots.emulator.emulator import TelegramEmulator

COMMAND_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")


@method("getMe")
def get_me(emu: TelegramEmulator, bot: User, params: Params) -> dict[str, Any]:
    return bot.me_json()


@method("logOut")
def log_out(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    return True


@method("close")
def close(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    return True


@method("getUpdates", is_async=True)
async def get_updates(emu: TelegramEmulator, bot: User, params: Params) -> list[dict[str, Any]]:
    limit = params.get("limit") or 100
    if not 1 <= limit <= 100:
        limit = 100
    timeout = max(0, params.get("timeout") or 0)
    allowed = params.get("allowed_updates")
    if allowed is not None and not isinstance(allowed, list):
        raise bad_request("can't parse allowed_updates JSON array")
    return await emu.inboxes[bot.id].get_updates(params.get("offset"), limit, timeout, allowed)


@method("setWebhook")
def set_webhook(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    url = str(params.get("url") or "")
    inbox = emu.inboxes[bot.id]
    if params.get("drop_pending_updates"):
        inbox.drop_pending()
    if not url:
        inbox.delete_webhook()
        return True
    # Telegram insists on HTTPS; the emulator also takes http:// for local receivers.
    if not url.startswith(("https://", "http://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.get("secret_token")
    if secret is not None and not SECRET_TOKEN_RE.match(str(secret)):
        raise bad_request("secret token contains unallowed characters")
    max_connections = params.get("max_connections") or 40
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: invalid max_connections")
    allowed = params.get("allowed_updates")
    inbox.set_allowed(allowed if isinstance(allowed, list) else None)
    inbox.set_webhook(
        Webhook(url=url, secret_token=secret, max_connections=max_connections),
        emu.http_session(),
        emu.webhook_retry_delay,
    )
    return True


@method("deleteWebhook")
def delete_webhook(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    inbox = emu.inboxes[bot.id]
    inbox.delete_webhook()
    if params.get("drop_pending_updates"):
        inbox.drop_pending()
    return True


@method("getWebhookInfo")
def get_webhook_info(emu: TelegramEmulator, bot: User, params: Params) -> dict[str, Any]:
    return emu.inboxes[bot.id].webhook_info()


def _commands_key(bot: User, params: Params) -> tuple[int, str, str]:
    scope = params.get("scope") or {"type": "default"}
    if not isinstance(scope, dict) or "type" not in scope:
        raise bad_request("can't parse BotCommandScope JSON object")
    return bot.id, json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")


@method("setMyCommands")
def set_my_commands(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    commands = need(params, "commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    for command in commands:
        if not isinstance(command, dict) or not COMMAND_NAME_RE.match(
            str(command.get("command", ""))
        ):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    emu.bot_commands[_commands_key(bot, params)] = [
        {"command": c["command"], "description": c["description"]} for c in commands
    ]
    return True


@method("getMyCommands")
def get_my_commands(emu: TelegramEmulator, bot: User, params: Params) -> list[dict[str, str]]:
    return emu.bot_commands.get(_commands_key(bot, params), [])


@method("deleteMyCommands")
def delete_my_commands(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    emu.bot_commands.pop(_commands_key(bot, params), None)
    return True
