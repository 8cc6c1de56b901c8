"""The HTTP face: `/bot<token>/<method>` answered in the Bot API's JSON shapes.

The request path stays lean for the benchmark: a dict lookup for the token and
the method, typed parameters, the handler, one recorded Call. No logging per
request (and a token never reaches a log line).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

# Importing the method modules registers them in METHODS.
from bots.emulator import api_bot, api_members, api_messages  # noqa: F401
from bots.emulator.api import METHODS, coerce
from bots.emulator.emulator import DropConnection
from bots.emulator.errors import ApiError, EmulatorError, bad_request
from bots.emulator.recording import Call

if TYPE_CHECKING:
    from bots.emulator.emulator import TelegramEmulator

logger = logging.getLogger(__name__)

EMULATOR_KEY: web.AppKey[TelegramEmulator] = web.AppKey("emulator")
NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}
# How late the event loop's timers may wake (epoll counts whole milliseconds).
TIMER_GRAIN = 0.001
UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}


def _answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


async def _raw_params(request: web.Request) -> tuple[dict[str, Any], bool]:
    """Query string plus body; the flag says whether values came as form strings."""
    raw: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return raw, True
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON request body") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: request body must be a JSON object")
        raw.update(body)
        return raw, False
    form = await request.post()
    raw.update({k: v for k, v in form.items() if isinstance(v, str)})
    return raw, True


async def handle_bot_api(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMULATOR_KEY]
    token = request.match_info["token"]
    bot = emu.bots_by_token.get(token)
    if bot is None:
        # Telegram: 401 for a well-formed token it does not know, 404 for a malformed one.
        well_formed = token.partition(":")[0].isdigit() and ":" in token
        return _answer(UNAUTHORIZED, 401) if well_formed else _answer(NOT_FOUND, 404)
    entry = METHODS.get(request.match_info["method"].lower())
    if entry is None:
        return _answer(NOT_FOUND, 404)
    name, handler, is_async = entry
    lname = name.lower()
    params: dict[str, Any] = {}
    latency = woke = 0.0
    arrived = time.perf_counter()  # reading the parameters is the emulator's work too
    try:
        raw, from_form = await _raw_params(request)
        params = coerce(raw, from_form=from_form)
        latency = emu.latency(lname, params)
        await emu.before_call(bot, lname, params, latency)
        woke = time.perf_counter()
        result = await handler(emu, bot, params) if is_async else handler(emu, bot, params)
    except ApiError as error:
        failure = error
    except EmulatorError as error:
        failure = bad_request(str(error))
    except (TypeError, ValueError, AttributeError, KeyError) as error:
        # A parameter of the wrong shape that no check caught: still a client error.
        logger.warning("emulator.bad_parameters", exc_info=True, extra={"method": name})
        failure = bad_request(f"invalid parameters ({type(error).__name__})")
    except DropConnection:
        emu.record(Call(name, bot.id, params, False, None, None, "dropped", time.time()))
        if request.transport is not None:
            request.transport.abort()
        # Nothing reaches the client: the transport is gone before this is written.
        return web.Response(status=500)
    else:
        answer_at = arrived + latency + (time.perf_counter() - woke)
        emu.record(Call(name, bot.id, params, True, result, None, None, time.time()))
        return await _on_its_way_back(_answer({"ok": True, "result": result}), answer_at)
    answer_at = arrived + latency + (time.perf_counter() - woke if woke else 0.0)
    code, description = failure.error_code, failure.description
    emu.record(Call(name, bot.id, params, False, None, code, description, time.time()))
    return await _on_its_way_back(_answer(failure.to_json(), code), answer_at)


async def _on_its_way_back(response: web.Response, answer_at: float) -> web.Response:
    """Hold the answer back until `answer_at` (perf_counter): the added latency after the
    request came in, plus what the call itself took (a long poll parked). Encoding the
    answer (~0.4 ms for 100 updates) and the first half's timer waking late fall within
    the second half instead of after it.

    The loop's timers wake on whole milliseconds (epoll), up to 1 ms late: 50 ms added
    became 50.5 ms on average. The last millisecond is waited out in turns of the loop,
    which run everything else meanwhile."""
    remaining = answer_at - time.perf_counter()
    if remaining > TIMER_GRAIN:
        await asyncio.sleep(remaining - TIMER_GRAIN)
    while time.perf_counter() < answer_at:  # noqa: ASYNC110 - a deadline, not an event
        await asyncio.sleep(0)
    return response


def build_app(emu: TelegramEmulator) -> web.Application:
    app = web.Application(client_max_size=50 * 1024 * 1024)
    app[EMULATOR_KEY] = emu
    app.router.add_route("*", "/bot{token}/{method}", handle_bot_api)
    from bots.emulator.control import add_control_routes

    add_control_routes(app, emu)
    return app
