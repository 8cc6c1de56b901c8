"""One poller per bot token across every runbot process.

Two runbot processes polling one token make Telegram answer 409 Conflict and
split the updates between them, so a process runs a bot only while it holds
that bot's lock:

* PostgreSQL: a session-level advisory lock on a dedicated connection (not
  Django's: Django closes its connections between batches, which would drop
  the lock silently). When the process dies, its connection closes and
  PostgreSQL frees the lock at once; the other process takes it on its next
  reconcile pass.
* SQLite (one host by construction): an exclusive `flock` on a file beside
  the database, which the kernel frees when the process dies.

Both are keyed on the bot's Telegram id, the token's first part, so a bot
re-tokened in admin keeps its lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Protocol

import structlog
from django.conf import settings
from django.db import connections

logger = structlog.get_logger(__name__)


class BotLocks(Protocol):
    async def acquire(self, telegram_id: int) -> bool:
        """Try once, without waiting. True: this process now holds (or already held) it."""

    async def release(self, telegram_id: int) -> None: ...

    async def still_held(self) -> bool:
        """False when the locks may have been lost (the lock connection died)."""

    async def close(self) -> None:
        """Release every lock held."""


def advisory_key(telegram_id: int) -> int:
    """A signed 64-bit key that other applications' advisory locks will not collide with."""
    digest = hashlib.sha256(f"nezuko:bot:{telegram_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLocks:
    """PostgreSQL session advisory locks on one connection owned by this object."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._conn = None
        self._held: set[int] = set()

    async def _connection(self):
        import psycopg

        if self._conn is None or self._conn.closed:
            if self._held:
                logger.warning("locks.connection_lost", bots=sorted(self._held))
                self._held.clear()
            self._conn = await psycopg.AsyncConnection.connect(
                **conninfo(self.alias), autocommit=True, application_name="nezuko-runbot-locks"
            )
        return self._conn

    async def acquire(self, telegram_id: int) -> bool:
        if telegram_id in self._held and await self.still_held():
            return True
        conn = await self._connection()
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (advisory_key(telegram_id),))
        row = await cursor.fetchone()
        if row and row[0]:
            self._held.add(telegram_id)
            return True
        return False

    async def release(self, telegram_id: int) -> None:
        if telegram_id not in self._held:
            return
        self._held.discard(telegram_id)
        if self._conn is not None and not self._conn.closed:
            with contextlib.suppress(Exception):
                await self._conn.execute(
                    "SELECT pg_advisory_unlock(%s)", (advisory_key(telegram_id),)
                )

    async def still_held(self) -> bool:
        if self._conn is None or self._conn.closed:
            return not self._held
        try:
            await self._conn.execute("SELECT 1")
        except Exception:
            logger.warning("locks.connection_lost", bots=sorted(self._held))
            self._held.clear()
            with contextlib.suppress(Exception):
                await self._conn.close()
            return False
        return True

    async def close(self) -> None:
        self._held.clear()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None


class FileLocks:
    """`flock` per bot in a directory: for SQLite, where every process is on one host."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[int, int] = {}

    async def acquire(self, telegram_id: int) -> bool:
        if telegram_id in self._files:
            return True
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / f"bot-{telegram_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._files[telegram_id] = fd
        return True

    async def release(self, telegram_id: int) -> None:
        fd = self._files.pop(telegram_id, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    async def still_held(self) -> bool:
        return True

    async def close(self) -> None:
        for telegram_id in list(self._files):
            await self.release(telegram_id)


def conninfo(alias: str = "default") -> dict[str, str]:
    """psycopg keyword arguments for Django's database `alias` (the test database in tests)."""
    params = connections[alias].settings_dict
    info = {
        "dbname": params["NAME"],
        "user": params.get("USER") or "",
        "password": params.get("PASSWORD") or "",
        "host": params.get("HOST") or "",
        "port": str(params.get("PORT") or ""),
    }
    return {key: value for key, value in info.items() if value}


def lock_directory(alias: str = "default") -> Path:
    name = str(connections[alias].settings_dict["NAME"])
    if name.startswith("file:") or name in ("", ":memory:"):
        # An in-memory database is private to its process: any directory will do.
        return Path(settings.BASE_DIR) / "var" / "locks" / f"memory-{os.getpid()}"
    return Path(name).with_suffix(".locks")


def get_locks(alias: str = "default") -> BotLocks:
    """The lock kind that fits the configured database."""
    if connections[alias].vendor == "postgresql":
        return AdvisoryLocks(alias)
    return FileLocks(lock_directory(alias))
