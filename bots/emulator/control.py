"""A small JSON control API beside the Bot API, for scripts and the demo.

Everything lives under `/_emulator/`; ids stand for users and chats. Acting as
people goes through one endpoint that calls the same methods tests call:

    POST /_emulator/act  {"action": "join", "chat": -1001000000001, "user": 1000000002}

Errors answer 400 with `{"ok": false, "error": "..."}`. Bot tokens appear only in
the answer that creates a bot (the caller needs it); never in listings.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bots.emulator.errors import EmulatorError
from bots.emulator.faults import FloodLimiter
from bots.emulator.state import Chat

if TYPE_CHECKING:
    from bots.emulator.emulator import TelegramEmulator

PREFIX = "/_emulator"
# What a script may do as people: the emulator's own acting methods, nothing else.
ACTIONS = frozenset(
    {
        "join",
        "leave",
        "add_member",
        "add_bot",
        "promote",
        "demote",
        "ban",
        "send_message",
        "edit_message",
        "send_as_chat",
        "post",
        "auto_forward",
        "press_button",
        "request_join",
        "create_topic",
        "link_discussion",
        "block",
        "unblock",
        "migrate",
    }
)
USER_ARGS = frozenset({"user", "who", "by", "bot"})
CHAT_ARGS = frozenset({"chat", "channel", "group", "sender_chat"})

Route = Callable[[web.Request], Awaitable[web.Response]]


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=400)


def _chat_json(chat: Chat) -> dict[str, Any]:
    data = chat.to_json()
    data["linked_chat_id"] = chat.linked_chat_id
    data["join_by_request"] = chat.join_by_request
    data["members"] = [m.to_json(chat.type) for m in chat.members.values() if m.status != "left"]
    return data


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.text())
    except ValueError:
        raise EmulatorError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise EmulatorError("the body must be a JSON object")
    return body


def _resolve(emu: TelegramEmulator, name: str, value: Any) -> Any:
    """Turn ids in an action's arguments into the emulator's users and chats."""
    if value is None:
        return None
    if name in USER_ARGS:
        return emu.user(int(value))
    if name in CHAT_ARGS:
        if isinstance(value, int) and value in emu.users:
            return emu.users[value]  # a bot's private chat
        return emu.chat(value)
    return value


def _guarded(emu: TelegramEmulator, route: Callable[..., Awaitable[Any]]) -> Route:
    """Run a control route; a mistake by the caller is a 400, never a 500."""

    async def run(request: web.Request) -> web.Response:
        try:
            return _ok(await route(emu, request))
        except (EmulatorError, KeyError, TypeError, ValueError) as exc:
            return _error(str(exc) or type(exc).__name__)

    return run


async def _state(emu: TelegramEmulator, request: web.Request) -> dict[str, Any]:
    return {
        "api_url": emu.api_url,
        "bots": [u.to_json() for u in emu.users.values() if u.is_bot],
        "users": [u.to_json() for u in emu.users.values() if not u.is_bot],
        "chats": [_chat_json(c) for c in emu.chats.values()],
    }


async def _create_bot(emu: TelegramEmulator, request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    bot = emu.create_bot(
        username=str(body.get("username") or "nezuko_bot"),
        first_name=body.get("first_name"),
        token=body.get("token"),
    )
    return {**bot.to_json(), "token": bot.token}


async def _create_user(emu: TelegramEmulator, request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    options = {k: body[k] for k in ("username", "language_code") if k in body}
    return emu.create_user(str(body["first_name"]), **options).to_json()


async def _create_chat(emu: TelegramEmulator, request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    kind = request.match_info["kind"]
    creator = emu.user(int(body["creator"])) if body.get("creator") is not None else None
    options = {k: body[k] for k in ("username", "join_by_request", "description") if k in body}
    if kind == "supergroups":
        options.update({k: body[k] for k in ("is_forum", "permissions") if k in body})
        chat = emu.create_supergroup(str(body["title"]), creator, **options)
    elif kind == "channels":
        chat = emu.create_channel(str(body["title"]), creator, **options)
    else:
        raise EmulatorError(f"unknown chat kind {kind!r}: use supergroups or channels")
    return _chat_json(chat)


async def _act(emu: TelegramEmulator, request: web.Request) -> Any:
    body = await _body(request)
    action = body.pop("action", None)
    if action not in ACTIONS:
        raise EmulatorError(f"action must be one of {sorted(ACTIONS)}")
    handler = getattr(emu, action)
    arguments = {name: _resolve(emu, name, value) for name, value in body.items()}
    inspect.signature(handler).bind(**arguments)  # a clear TypeError for wrong arguments
    return handler(**arguments)


async def _member(emu: TelegramEmulator, request: web.Request) -> dict[str, Any]:
    return emu.member(int(request.match_info["chat_id"]), int(request.match_info["user_id"]))


async def _messages(emu: TelegramEmulator, request: web.Request) -> list[dict[str, Any]]:
    return emu.messages(int(request.match_info["chat_id"]))


async def _calls(emu: TelegramEmulator, request: web.Request) -> list[dict[str, Any]]:
    since = int(request.query.get("since", 0))
    method = request.query.get("method")
    return [c.to_json() for c in emu.calls[since:] if method is None or c.method == method]


async def _add_fault(emu: TelegramEmulator, request: web.Request) -> bool:
    body = await _body(request)
    if body.get("drop"):
        emu.drop(str(body["method"]), body.get("chat_id"), times=body.get("times", 1))
    elif body.get("delay"):
        emu.delay(str(body["method"]), float(body["delay"]), body.get("chat_id"))
    else:
        emu.fail(
            str(body["method"]),
            chat_id=body.get("chat_id"),
            error_code=int(body.get("error_code", 429)),
            retry_after=body.get("retry_after", 3),
            times=body.get("times", 1),
            description=body.get("description"),
        )
    return True


async def _clear_faults(emu: TelegramEmulator, request: web.Request) -> bool:
    emu.clear_faults()
    return True


async def _flood(emu: TelegramEmulator, request: web.Request) -> bool:
    body = await _body(request)
    if body.get("enabled") and any(k in body for k in ("per_bot_per_second", "group_per_minute")):
        limits = {k: int(v) for k, v in body.items() if k != "enabled"}
        emu.flood_limits = FloodLimiter(**limits)
    else:
        emu.flood_limits = bool(body.get("enabled"))
    return emu.flood_limits


def add_control_routes(app: web.Application, emu: TelegramEmulator) -> None:
    routes: list[tuple[str, str, Callable[..., Awaitable[Any]]]] = [
        ("GET", "/state", _state),
        ("POST", "/bots", _create_bot),
        ("POST", "/users", _create_user),
        ("POST", "/act", _act),
        ("GET", "/chats/{chat_id}/members/{user_id}", _member),
        ("GET", "/chats/{chat_id}/messages", _messages),
        ("GET", "/calls", _calls),
        ("POST", "/faults", _add_fault),
        ("DELETE", "/faults", _clear_faults),
        ("POST", "/flood", _flood),
        # Last: it would otherwise swallow the fixed POST paths above.
        ("POST", "/{kind}", _create_chat),
    ]
    for verb, path, route in routes:
        app.router.add_route(verb, PREFIX + path, _guarded(emu, route))
