"""A bot's update journal: updates received but not yet handled, on local disk.

This is what makes delivery at-least-once. Telegram forgets an update once it
is confirmed: by the next getUpdates offset when polling, by our 200 answer to
a webhook. The runner confirms an update only after it was either decided in
memory on the spot (the fast path: nothing to do) or appended here. When the
handlers finish an update its id is marked done. After a crash — kill -9
included — `UpdateJournal.open()` hands back the updates still pending, in the
order they arrived, and the ids of the last batch fetched: the only updates
Telegram may send again (each getUpdates confirmed the batches before it), so
the runner drops them when they come.

Why not resume at the highest id journaled? Telegram picks the next update id
at random after a week without updates, and a restart that asked for
`offset = highest + 1` could skip every update after such a pause.

The file is JSON lines, appended with one `os.write` per batch on an
`O_APPEND` descriptor: the bytes are in the kernel when `append` returns, so
a killed process loses nothing; only a crash of the machine itself can lose
what was not yet synced, unless `NEZUKO_JOURNAL_FSYNC` asks for an fsync per
append (~0.2 ms here). Lines:

* ``{"u": <update>}`` a pending update;
* ``{"d": [ids]}`` updates handled since;
* ``{"b": [ids]}`` every update id of the last getUpdates batch.

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

# Rewrite the file once its dead lines (updates handled, done marks, old batch
# ids) outnumber the live ones (pending updates, the last batch) DEAD_PER_LIVE
# times, and there are at least COMPACT_MIN_LINES of them. A rewrite costs the
# live lines; at least DEAD_PER_LIVE times as many were appended since the last
# one, so compaction costs O(1) per line however large the backlog (a fixed
# "every N lines" rewrote a 50,000-update backlog after every done mark).
DEAD_PER_LIVE = 2
COMPACT_MIN_LINES = 1_000


class UpdateJournal:
    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        self.last_batch: tuple[int, ...] = ()
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
        # Start from a compact file: pending updates and the last batch only.
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
            self._pending[entry["u"]["update_id"]] = entry["u"]
        elif "d" in entry:
            for update_id in entry["d"]:
                self._pending.pop(update_id, None)
        elif "b" in entry:
            self.last_batch = tuple(entry["b"])

    # --- while running -----------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._pending)

    def append(self, updates: Iterable[dict[str, Any]],
               batch: Iterable[int] | None = None) -> None:
        """Journal updates (and, polling, the ids of the batch they came in) before
        Telegram is told we have them."""
        lines = []
        for update in updates:
            self._pending[update["update_id"]] = update
            lines.append(_line({"u": update}))
        if batch is not None:
            self.last_batch = tuple(batch)
            lines.append(_line({"b": list(self.last_batch)}))
        if lines:
            self._write(b"".join(lines), len(lines))

    def done(self, update_ids: Iterable[int]) -> None:
        """These updates were handled: a restart must not handle them again."""
        finished = [u for u in update_ids if self._pending.pop(u, None) is not None]
        if not finished:
            return
        self._write(_line({"d": finished}), 1)
        if self._worth_compacting():
            self._rewrite()

    @property
    def lines(self) -> int:
        """Lines in the file now (its size in entries)."""
        return self._lines

    def _live_lines(self) -> int:
        return len(self._pending) + (1 if self.last_batch else 0)

    def _worth_compacting(self) -> bool:
        dead = self._lines - self._live_lines()
        return dead >= COMPACT_MIN_LINES and dead > DEAD_PER_LIVE * self._live_lines()

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
        """Replace the file with its pending updates and the last batch, atomically."""
        self.close()
        parts = [_line({"u": update}) for update in self._pending.values()]
        if self.last_batch:
            parts.append(_line({"b": list(self.last_batch)}))
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
