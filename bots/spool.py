"""A durable spool: an append-only on-disk queue of JSON records.

What the engine must keep while the database is away (ledger writes, events,
rollups) goes here, and comes back in order once the database answers.

* `append(record)` is one `write()` of one JSON line on an unbuffered file
  before it returns: the bytes are in the kernel's page cache, so a kill -9 of
  the process loses nothing. It does not fsync by default: fsync only adds
  safety against a machine crash or power loss, and costs a disk round trip
  (milliseconds) per record exactly when a raid meets an outage; `fsync=True`
  is there for whoever prefers that trade.
* `read(limit)` returns the oldest records not yet acknowledged, with the
  byte offset after each; `ack(offset)` records progress in a small side file
  (written by rename). A crash between writing records to the database and
  `ack` replays them once more after the restart, so what is spooled must be
  safe to apply twice in order (the ledger's writes are; events may repeat).
* A spool that is fully acknowledged is compacted: the file is truncated.
* Bounded by bytes and records: beyond either bound `append` drops the
  record, counts it (`dropped`, `nezuko_spool_dropped_total`) and says so in
  the log. A torn last line (the disk filled mid-write) is cut off at open.

Several runbot processes may share one directory: each takes the first slot
(`<name>-<n>.jsonl`) nobody holds a lock on, so a restarted process takes its
predecessor's slot back and replays it.

`write_bisecting` is the poison-proof way to store a batch: a batch refused
for its data is split until the rows that can never be stored are found and
set aside, and all the others are written. `storable` cleans text of what a
database refuses.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog
from django.db import InterfaceError, OperationalError

from bots import metrics

logger = structlog.get_logger(__name__)

T = TypeVar("T")

MAX_BYTES = 256 * 1024 * 1024
MAX_RECORDS = 2_000_000
MAX_SLOTS = 64
# Log the first drop and then one line per this many, so a full disk does not flood the log.
DROP_LOG_EVERY = 1_000


def is_outage(exc: BaseException) -> bool:
    """The database (or the way to it) is away: keep the rows and try later.

    Anything else (DataError, IntegrityError, a ValueError such as PostgreSQL
    refusing NUL) is about the rows themselves and will never get better.
    """
    return isinstance(exc, OperationalError | InterfaceError | ConnectionError)


class Spool:
    """One append-only queue of JSON records in `directory`. Thread-safe."""

    def __init__(self, directory: Path | str, name: str, *, max_bytes: int = MAX_BYTES,
                 max_records: int = MAX_RECORDS, fsync: bool = False) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.fsync = fsync
        self.dropped = 0
        self._lock = threading.Lock()
        self._size = self._offset = self.pending = 0
        directory = Path(directory)
        self.path = directory / f"{name}-unavailable.jsonl"
        self._offset_path = self.path.with_suffix(".offset")
        self._file: Any = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._file, self.path = self._claim_slot(directory, name)
        except OSError as exc:
            # A spool that cannot be opened must not stop enforcement: it then
            # keeps nothing, and every record it refuses is counted as dropped.
            logger.error("spool.unavailable", spool=name, directory=str(directory),
                         error=describe(exc))
            return
        self._offset_path = self.path.with_suffix(".offset")
        self._offset = self._read_offset()
        self._size, self.pending = self._scan()
        metrics.set_spooled(self.name, self.pending)
        if self.pending:
            logger.info("spool.opened", spool=name, path=str(self.path), pending=self.pending)

    def _claim_slot(self, directory: Path, name: str) -> tuple[Any, Path]:
        for slot in range(MAX_SLOTS):
            path = directory / f"{name}-{slot}.jsonl"
            handle = open(path, "ab+", buffering=0)  # noqa: SIM115 - held until close()
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return handle, path
        raise OSError(f"every spool slot of {name!r} in {directory} is taken")

    def _read_offset(self) -> int:
        try:
            return int(self._offset_path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _scan(self) -> tuple[int, int]:
        """Size and pending records; cuts off a torn last line."""
        self._file.seek(0)
        data = self._file.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            logger.warning("spool.torn_record_cut", spool=self.name, bytes=len(data) - end)
            self._file.truncate(end)
        if self._offset > end:
            # Compaction truncated the file but died before resetting the offset.
            self._offset = 0
        return end, data.count(b"\n", self._offset, end)

    def __len__(self) -> int:
        return self.pending

    # --- writing ------------------------------------------------------------------

    def append(self, record: Any) -> bool:
        """Store one record durably (see the module docstring). False when dropped."""
        return self.extend([record]) == 1

    def extend(self, records: Sequence[Any]) -> int:
        """Store records in order with one write; returns how many were kept."""
        lines = [json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records]
        with self._lock:
            kept = 0
            room_bytes = self.max_bytes - (self._size - self._offset)
            room_records = self.max_records - self.pending if self._file is not None else 0
            size = 0
            for line in lines:
                if kept >= room_records or size + len(line) > room_bytes:
                    break
                size += len(line)
                kept += 1
            if kept:
                self._file.write(b"".join(lines[:kept]))
                if self.fsync:
                    os.fsync(self._file.fileno())
                self._size += size
                self.pending += kept
            if kept < len(lines):
                self._count_drops(len(lines) - kept)
        metrics.set_spooled(self.name, self.pending)
        return kept

    def _count_drops(self, count: int) -> None:
        before = self.dropped
        self.dropped += count
        metrics.record_spool_dropped(self.name, count)
        if before == 0 or before // DROP_LOG_EVERY != self.dropped // DROP_LOG_EVERY:
            logger.error("spool.full_records_dropped", spool=self.name, dropped=self.dropped,
                         pending=self.pending, max_bytes=self.max_bytes,
                         max_records=self.max_records)

    # --- reading back -------------------------------------------------------------

    def read(self, limit: int = 500) -> list[tuple[int, Any]]:
        """Up to `limit` of the oldest unacknowledged records, each with the offset after it."""
        with self._lock:
            offset, size = self._offset, self._size
            if offset >= size:
                return []
            with open(self.path, "rb") as reader:
                reader.seek(offset)
                out: list[tuple[int, Any]] = []
                while len(out) < limit and offset < size:
                    line = reader.readline()
                    if not line.endswith(b"\n"):
                        break
                    offset += len(line)
                    try:
                        out.append((offset, json.loads(line)))
                    except ValueError:
                        # Not ours to judge: skip it, and say so once.
                        logger.error("spool.unreadable_record", spool=self.name, offset=offset)
                        out.append((offset, None))
            return out

    def ack(self, offset: int) -> None:
        """Everything before `offset` is stored elsewhere now; compacts a drained spool."""
        with self._lock:
            if offset <= self._offset:
                return
            consumed = self._count(self._offset, offset)
            self._offset = offset
            self.pending -= consumed
            if self._offset >= self._size:
                # Truncate first: a crash before the offset is reset finds offset > size.
                self._file.truncate(0)
                self._size = self._offset = 0
                self.pending = 0
                with contextlib.suppress(FileNotFoundError):
                    self._offset_path.unlink()
            else:
                tmp = self._offset_path.with_suffix(".offset.tmp")
                tmp.write_text(str(offset))
                os.replace(tmp, self._offset_path)
        metrics.set_spooled(self.name, self.pending)

    def _count(self, start: int, end: int) -> int:
        with open(self.path, "rb") as reader:
            reader.seek(start)
            return reader.read(end - start).count(b"\n")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()


def write_bisecting(items: Sequence[T], write: Callable[[Sequence[T]], Any],
                    set_aside: Callable[[T, BaseException], None]) -> int:
    """Write `items` in order, splitting any batch the database refuses for its data.

    `write(batch)` stores a batch atomically or raises. A batch refused for
    its data is halved until single rows remain; a row refused alone goes to
    `set_aside(row, error)` and the rest are written. Returns how many leading
    items are done (written or set aside); it stops at the first outage
    (`is_outage`), leaving the rest to the caller.
    """
    done = 0
    todo = [(0, len(items))]
    while todo:
        lo, hi = todo.pop()
        try:
            write(items[lo:hi])
        except Exception as exc:
            if is_outage(exc):
                return done
            if hi - lo == 1:
                set_aside(items[lo], exc)
            else:
                mid = (lo + hi) // 2
                # Right half pushed first: the left one is written first, order holds.
                todo += [(mid, hi), (lo, mid)]
                continue
        done = hi
    return done


def drain(spool: Spool, write: Callable[[list[Any]], Any],
          set_aside: Callable[[Any, BaseException], None], *,
          decode: Callable[[Any], Any], batch_size: int) -> tuple[int, bool]:
    """Write what `spool` holds back to the database, oldest first.

    Each batch of `batch_size` records is decoded and written by `write(values)`
    (through `write_bisecting`, so a record refused for its data goes to
    `set_aside(record, error)` and the rest are written), and acknowledged as far as
    it was done. Returns how many were written, and whether the database was away
    (it stops there, leaving the rest spooled for the next flush).
    """
    written = 0
    while spool.pending:
        records = spool.read(batch_size)
        if not records:
            return written, False
        refused = 0

        def refuse(item: tuple[int, Any], exc: BaseException) -> None:
            nonlocal refused
            refused += 1
            set_aside(item[1], exc)

        done = write_bisecting(
            records,
            lambda chunk: write([decode(record) for _, record in chunk if record is not None]),
            refuse,
        )
        written += done - refused
        if done:
            spool.ack(records[done - 1][0])
        if done < len(records):
            return written, True
    return written, False


# PostgreSQL refuses NUL in text; a lone surrogate cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str | None) -> str:
    """`text` without the characters a database refuses (NUL, lone surrogates).

    Names and titles come from Telegram and are cleaned at the edge with this,
    so a member whose name holds a NUL is still restricted and recorded.
    """
    if not text:
        return ""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub("", text)


def describe(exc: BaseException) -> str:
    """The reason a row was set aside, for the one log line it gets."""
    return f"{type(exc).__name__}: {exc}"[:300]
