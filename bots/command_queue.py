"""Dashboard-to-bot commands (BotCommand rows), each executed exactly once.

The dashboard, the API or admin insert a PENDING row; the runbot process that
runs the bot claims it and records the result. Claiming is atomic so two
runbot processes never both run one command:

* PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` picks the oldest pending row
  nobody else is claiming, and flips it to RUNNING in the same transaction.
* Otherwise: `filter(pk=..., status=PENDING).update(status=RUNNING)`; a count
  of 0 means another runbot got there first, so the next row is tried.

What each kind does belongs to the engine: runbot passes a registry of
executors, `{BotCommand.Kind.UNMUTE: unmute, ...}`; kinds without one stay
PENDING (a newer runbot may know them). An executor is
`async def (command, application) -> dict | None`; its return value is stored
as the result, an exception marks the command FAILED with its message.

A command whose runbot died while RUNNING is never run again on its own (at
most once beats twice for a ban): `fail_stale()` marks it FAILED saying so,
and staff can queue it again from admin.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

import structlog
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from telegram.ext import Application

from bots.heartbeat import describe_error
from bots.models import BotCommand

logger = structlog.get_logger(__name__)

Executor = Callable[[BotCommand, Application], Awaitable[dict[str, Any] | None]]


def claim_next(bot_id: int, kinds: Collection[str] | None = None) -> BotCommand | None:
    """Claim the oldest pending command of `bot_id` (of `kinds`, if given), or None.

    Kinds this process has no executor for stay PENDING for one that has.
    """
    if not connection.in_atomic_block:
        close_old_connections()
    pending = BotCommand.objects.filter(bot_id=bot_id, status=BotCommand.Status.PENDING)
    if kinds is not None:
        pending = pending.filter(kind__in=list(kinds))
    if connection.vendor == "postgresql":
        with transaction.atomic():
            command = (
                pending.order_by("created_at", "pk").select_for_update(skip_locked=True).first()
            )
            if command is None:
                return None
            _mark_running(command)
            return command
    for pk in pending.order_by("created_at", "pk").values_list("pk", flat=True)[:20]:
        claimed = BotCommand.objects.filter(pk=pk, status=BotCommand.Status.PENDING).update(
            status=BotCommand.Status.RUNNING, started_at=timezone.now()
        )
        if claimed == 1:
            return BotCommand.objects.get(pk=pk)
        # Another runbot got there first: try the next one.
    return None


def _mark_running(command: BotCommand) -> None:
    command.status = BotCommand.Status.RUNNING
    command.started_at = timezone.now()
    command.save(update_fields=["status", "started_at"])


def finish(command: BotCommand, *, result: dict[str, Any] | None, error: str = "") -> None:
    command.status = BotCommand.Status.FAILED if error else BotCommand.Status.DONE
    command.result = result or {}
    command.error = error
    command.finished_at = timezone.now()
    command.save(update_fields=["status", "result", "error", "finished_at"])


STALE_ERROR = (
    "runbot stopped while running this command; it was not retried in case it had "
    "already acted. Queue it again to retry."
)


def fail_stale(bot_id: int, older_than: datetime.timedelta) -> int:
    """Mark this bot's commands RUNNING for longer than `older_than` as FAILED.

    Only the process that runs a bot calls this for it, so a command still
    RUNNING that long belongs to a runbot that died. Returns how many.
    """
    if not connection.in_atomic_block:
        close_old_connections()
    return BotCommand.objects.filter(
        bot_id=bot_id,
        status=BotCommand.Status.RUNNING,
        started_at__lt=timezone.now() - older_than,
    ).update(status=BotCommand.Status.FAILED, error=STALE_ERROR, finished_at=timezone.now())


aclaim_next = sync_to_async(claim_next)
afinish = sync_to_async(finish)
afail_stale = sync_to_async(fail_stale)


class CommandQueue:
    """Runs one bot's queued commands through the engine's executors."""

    def __init__(
        self, bot_id: int, application: Application, executors: Mapping[str, Executor]
    ) -> None:
        self.bot_id = bot_id
        self.application = application
        self.executors = executors

    async def run_one(self) -> bool:
        """Claim and run one command. True: a command ran (go again); False: none pending."""
        if not self.executors:
            return False
        command = await aclaim_next(self.bot_id, list(self.executors))
        if command is None:
            return False
        log = logger.bind(command_id=command.pk, kind=command.kind, bot_id=self.bot_id)
        executor = self.executors[command.kind]
        try:
            result = await executor(command, self.application)
        except Exception as exc:
            log.warning("command.failed", exc_info=True)
            await afinish(command, result=None, error=describe_error(exc))
            return True
        await afinish(command, result=result)
        log.info("command.done")
        return True

    async def run_pending(self, limit: int = 100) -> int:
        """Run commands until none is pending (at most `limit`). Returns how many ran."""
        ran = 0
        while ran < limit and await self.run_one():
            ran += 1
        return ran
