"""The BotStatus row runbot keeps for each bot it runs.

Admin, the dashboard and `/readyz` read it: state, who runs the bot
(hostname:pid), since when, the last beat, updates handled in this run, and
the last error. `BotStatus.is_fresh()` treats a row older than 90 s as stale,
so runbot beats well inside that.
"""

from __future__ import annotations

import os
import socket

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from django.utils import timezone
from telegram.error import BadRequest, NetworkError, RetryAfter

from bots.models import BotInstance, BotStatus
from bots.redaction import redact

BEAT_INTERVAL_SECONDS = 15.0
MAX_ERROR_LENGTH = 2_000


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def describe_error(error: BaseException | str) -> str:
    """One line for admin: the class and message, with anything token-shaped removed."""
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    return redact(error)[:MAX_ERROR_LENGTH]


def is_network_error(error: BaseException) -> bool:
    """Telegram unreachable, slow, 5xx or flooding: expected and retried, so logged
    as one line without a traceback. PTB's BadRequest subclasses NetworkError but
    means our request was wrong, so it is not one."""
    if isinstance(error, BadRequest):
        return False
    return isinstance(error, (NetworkError, RetryAfter, ConnectionError, TimeoutError))


def write_status(
    bot_id: int,
    *,
    state: str | None = None,
    updates_handled: int | None = None,
    error: str | None = None,
    started: bool = False,
    host: str | None = None,
) -> None:
    """Upsert the row: only the fields given change, and every write is a beat."""
    if not connection.in_atomic_block:
        close_old_connections()
    now = timezone.now()
    fields: dict[str, object] = {"heartbeat_at": now, "host": host or runner_name()}
    if state is not None:
        fields["state"] = state
    if updates_handled is not None:
        fields["updates_handled"] = updates_handled
    if error is not None:
        fields["last_error"] = error
        fields["last_error_at"] = now
    if started:
        fields["started_at"] = now
        fields["updates_handled"] = 0
    if BotStatus.objects.filter(bot_id=bot_id).update(**fields):
        return
    # A bot deleted in admin while running has no row to create any more.
    if BotInstance.objects.filter(pk=bot_id).exists():
        BotStatus.objects.update_or_create(bot_id=bot_id, defaults=fields)


awrite_status = sync_to_async(write_status)


class Heartbeat:
    """One bot's heartbeat in this process. `updates_handled` counts this run."""

    def __init__(self, bot_id: int) -> None:
        self.bot_id = bot_id
        self.updates_handled = 0
        self.host = runner_name()

    def count_update(self) -> None:
        self.updates_handled += 1

    async def starting(self) -> None:
        self.updates_handled = 0
        await awrite_status(
            self.bot_id, state=BotStatus.State.STARTING, started=True, host=self.host
        )

    async def running(self) -> None:
        await awrite_status(
            self.bot_id,
            state=BotStatus.State.RUNNING,
            updates_handled=self.updates_handled,
            host=self.host,
        )

    async def beat(self) -> None:
        await awrite_status(self.bot_id, updates_handled=self.updates_handled, host=self.host)

    async def error(self, error: BaseException | str) -> None:
        """Record an error while the bot keeps running (a crash it restarts from)."""
        await awrite_status(
            self.bot_id,
            error=describe_error(error),
            updates_handled=self.updates_handled,
            host=self.host,
        )

    async def failed(self, error: BaseException | str) -> None:
        await awrite_status(
            self.bot_id,
            state=BotStatus.State.FAILED,
            error=describe_error(error),
            updates_handled=self.updates_handled,
            host=self.host,
        )

    async def stopped(self) -> None:
        await awrite_status(
            self.bot_id,
            state=BotStatus.State.STOPPED,
            updates_handled=self.updates_handled,
            host=self.host,
        )
