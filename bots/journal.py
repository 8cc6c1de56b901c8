"""A bot's update journal: updates received but not yet handled, on local disk.

This is what makes delivery at-least-once. Telegram forgets an update once it
is confirmed: by the next getUpdates offset when polling, by our 200 answer to
a webhook. The runner confirms an update only after it was either decided in
memory on the spot (the fast path: nothing to do) or appended here. When the
handlers finish an update its id is marked done. After a crash — kill -9
included — `UpdateJournal.open()` hands back the updates still pending, in the
order they arrived, and the highest update id ever journaled, so the poller
resumes after it and Telegram does not send the confirmed ones again.

The file is JSON lines, appended with one `os.write` per batch on an
`O_APPEND` descriptor: the bytes are in the kernel when `append` returns, so
a killed process loses nothing; only a crash of the machine itself can lose
what was not yet synced, unless `NEZUKO_JOURNAL_FSYNC` asks for an fsync per
append (~0.2 ms here). Lines:

* ``{"u": <update>}`` a pending update;
* ``{"d": [ids]}`` updates handled since;
* ``{"hw": id}`` the highest update id received so far.

One process writes a bot's journal at a time: the bot lock (`bots.locks`)
makes sure of that. The journal is per host; a process that takes a bot over
on another machine starts from what Telegram still holds.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog

logger = structlog.get_logger(__name__)

# Rewrite the file once this many lines were appended since the last rewrite
# (or at once when nothing is pending), so it never grows without bound.
COMPACT_AFTER_LINES = 20_000


class UpdateJournal:
    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        self.high_water: int | None = None
        self._pending: dict[int, dict[str, Any]] = {}
        self._fd: int | None = None
        self._lines = 0

    # --- start-up ------------------------------------------------------------------

    def open(self) -> list[dict[str, Any]]:
        """Read what a previous run left; returns the pending updates in arrival order."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pending = {}
        if self.path.exists():
            self._read()
        # Start from a compact file: pending updates and the high-water mark only.
        self._rewrite()
        return list(self._pending.values())

    def _read(self) -> None:
        with self.path.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    entry = json.loads(line)
                except ValueError:
                    # Only the last line can be torn (a crash mid-write); say so and go on.
                    logger.warning("journal.torn_line", path=str(self.path), line=number)
                    continue
                self._apply(entry)

    def _apply(self, entry: dict[str, Any]) -> None:
        if "u" in entry:
            update_id = entry["u"]["update_id"]
            self._pending[update_id] = entry["u"]
            self._raise_high_water(update_id)
        elif "d" in entry:
            for update_id in entry["d"]:
                self._pending.pop(update_id, None)
        elif "hw" in entry:
            self._raise_high_water(entry["hw"])

    def _raise_high_water(self, update_id: int) -> None:
        if self.high_water is None or update_id > self.high_water:
            self.high_water = update_id

    # --- while running -----------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._pending)

    def is_pending(self, update_id: int) -> bool:
        return update_id in self._pending

    def append(self, updates: Iterable[dict[str, Any]], *, high_water: int | None = None) -> None:
        """Journal updates (and the batch's highest id) before Telegram is told we have them."""
        lines = []
        for update in updates:
            self._pending[update["update_id"]] = update
            self._raise_high_water(update["update_id"])
            lines.append(_line({"u": update}))
        if high_water is not None and (self.high_water is None or high_water > self.high_water):
            self.high_water = high_water
            lines.append(_line({"hw": high_water}))
        if lines:
            self._write(b"".join(lines), len(lines))

    def done(self, update_ids: Iterable[int]) -> None:
        """These updates were handled: a restart must not handle them again."""
        finished = [u for u in update_ids if self._pending.pop(u, None) is not None]
        if not finished:
            return
        if not self._pending and self._lines >= 1_000:
            self._rewrite()  # nothing pending: start the file afresh
            return
        self._write(_line({"d": finished}), 1)
        if self._lines >= COMPACT_AFTER_LINES:
            self._rewrite()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    # --- the file ------------------------------------------------------------------------

    def _write(self, data: bytes, lines: int) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)
        self._lines += lines

    def _rewrite(self) -> None:
        """Replace the file with its pending updates and the high-water mark, atomically."""
        self.close()
        parts = [_line({"u": update}) for update in self._pending.values()]
        if self.high_water is not None:
            parts.append(_line({"hw": self.high_water}))
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as out:
            out.write(b"".join(parts))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
        self._lines = len(parts)


def _line(entry: dict[str, Any]) -> bytes:
    # ASCII: a lone surrogate Telegram escaped (\\ud800) must not fail the write.
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"
