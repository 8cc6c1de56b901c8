"""A bot that cannot reach Telegram logs one warning line per retry, with the reason.

Telegram (or the way to it) failing is expected and retried: a traceback per
retry buried the logs (~95 lines each) and paged on every blip. A failure
that is not a network error still logs its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from telegram.ext import Application

from bots.models import BotInstance, BotStatus
from bots.tests.runtime_support import close_db_threads, eventually, make_bot
from bots.tests.test_supervisor import has_state, running  # noqa: F401

__all__ = ["close_db_threads"]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_db_threads"),
]


def logged(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[dict[str, Any]]:
    """Every record at `level` or above, as structlog's event dict (stdlib ones too)."""
    events = []
    for record in caplog.records:
        if record.levelno < level:
            continue
        if isinstance(record.msg, dict):
            event = dict(record.msg)
        else:
            event = {"event": record.getMessage(), "logger": record.name}
        event["has_traceback"] = bool(record.exc_info or event.get("exc_info"))
        event["levelno"] = record.levelno
        events.append(event)
    return events


async def polling_again(emu: Any, since: int) -> bool:
    """True once a getUpdates after `since` failed and a later one was answered."""
    polls = [c for c in emu.calls[since:] if c.method == "getUpdates"]
    failed = next((i for i, c in enumerate(polls) if not c.ok), None)
    return failed is not None and any(c.ok for c in polls[failed + 1 :])


async def test_network_failures_log_one_line_per_retry_without_a_traceback(
    scene, running, caplog  # noqa: F811
):
    caplog.set_level(logging.INFO)
    emu = scene.emulator
    await sync_to_async(make_bot)(token=scene.bot.token, telegram_id=scene.bot.id)
    # Start-up: the connection drops, then Telegram answers 502; then it works.
    emu.drop("getMe", times=1)
    emu.fail("getMe", error_code=502, retry_after=None, times=1)
    running()
    await emu.wait_for_call("getUpdates", timeout=30)
    # While polling: one 502, woken by a message so the parked poll returns.
    since = len(emu.calls)
    emu.fail("getUpdates", error_code=502, retry_after=None, times=1)
    emu.send_message(scene.bot, scene.carol, "ping")
    await eventually(lambda: polling_again(emu, since), within=30)

    problems = logged(caplog)
    for event in problems:
        print({k: event.get(k) for k in ("event", "error", "retry_in", "has_traceback")})
    retries = [e for e in problems if e["event"] in ("bot.network_error", "bot.poll_failed")]
    # It should log one warning per failed attempt (two at start-up, one while polling)...
    assert [e["event"] for e in retries] == [
        "bot.network_error", "bot.network_error", "bot.poll_failed"
    ]
    assert all(e["levelno"] == logging.WARNING for e in retries)
    # ...each saying why...
    assert "disconnected" in retries[0]["error"] and "Bad Gateway" in retries[1]["error"]
    assert retries[0]["retry_in"] < retries[1]["retry_in"]
    # ...and nothing at warning or above, from any logger, carries a traceback.
    assert [e["event"] for e in problems if e["has_traceback"]] == []


def broken_install(_application: Application, _bot: BotInstance) -> None:
    raise RuntimeError("a bug in the engine's install")


async def test_an_unexpected_failure_keeps_its_traceback(scene, running, caplog):  # noqa: F811
    bot = await sync_to_async(make_bot)(token=scene.bot.token, telegram_id=scene.bot.id)
    running(install=broken_install)
    await eventually(lambda: has_state(bot, BotStatus.State.FAILED))

    crashes = [e for e in logged(caplog) if e["event"] == "bot.crashed"]
    # It should be an error with the traceback, for a bug is not retried away.
    assert crashes and crashes[0]["levelno"] == logging.ERROR
    assert crashes[0]["has_traceback"]
