"""The last log lines of this process, in memory, for the staff logs page.

`RingHandler` sits on the root logger beside the console handler (see
`nezuko.logging.build_logging_config`), so it sees every line that is logged,
structlog's and the libraries'. It keeps the last `capacity` of them as
`LogEntry` values (strings only: nothing holds a request or an exception
alive), and counts error-level lines in `nezuko_errors_total` by kind.

Secrets: values are passed through `nezuko.logging.redact` when stored (bot
tokens, login links, as in the console output) and through the stricter
`bots.redaction.scrub_text` when read for the page, so the page never
shows more than a Sentry report would. The ring is per process: the page shows
the lines of the process that serves it (runbot with its web server).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import traceback
from collections import deque
from datetime import UTC, datetime
from typing import Any

from bots import metrics
from bots.redaction import redact, scrub_text

DEFAULT_CAPACITY = 1000
MAX_VALUE_CHARS = 1000
MAX_EXCEPTION_CHARS = 4000
LEVELS = ("debug", "info", "warning", "error", "critical")
# Keys shown in their own columns, or structlog's bookkeeping: not repeated as fields.
_OWN_KEYS = {"event", "level", "logger", "timestamp", "exception", "exc_info", "bot",
             "username", "_record", "_from_structlog", "stack_info"}


@dataclasses.dataclass(frozen=True)
class LogEntry:
    time: str  # ISO 8601, UTC
    level: str  # debug .. critical
    logger: str
    event: str
    bot: str  # the bot's @username (or pk) when the line is about one bot, else ""
    fields: tuple[tuple[str, str], ...] = ()
    exception: str = ""

    @property
    def severity(self) -> int:
        return LEVELS.index(self.level) if self.level in LEVELS else 0


class LogRing:
    """A bounded, thread-safe buffer of the newest `LogEntry` values."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._entries.maxlen or 0

    def resize(self, capacity: int) -> None:
        with self._lock:
            self._entries = deque(self._entries, maxlen=max(1, capacity))

    def append(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def recent(self, *, level: str = "debug", bot: str = "", limit: int | None = None
               ) -> list[LogEntry]:
        """Newest first: entries at `level` or above, about `bot` when given, scrubbed."""
        floor = LEVELS.index(level) if level in LEVELS else 0
        with self._lock:
            entries = list(self._entries)
        chosen: list[LogEntry] = []
        for entry in reversed(entries):
            if entry.severity < floor or (bot and entry.bot != bot):
                continue
            chosen.append(dataclasses.replace(
                entry,
                event=scrub_text(entry.event),
                fields=tuple((key, scrub_text(value)) for key, value in entry.fields),
                exception=scrub_text(entry.exception),
            ))
            if limit is not None and len(chosen) >= limit:
                break
        return chosen

    def bots(self) -> list[str]:
        """The bots the buffered lines are about, for the page's filter."""
        with self._lock:
            return sorted({entry.bot for entry in self._entries if entry.bot})


ring = LogRing()


class RingHandler(logging.Handler):
    """A logging handler that keeps records in `ring` and counts errors."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        if ring.capacity != capacity:
            ring.resize(capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = entry_from_record(record)
            ring.append(entry)
            if record.levelno >= logging.ERROR:
                metrics.record_error(entry.event if _is_structlog(record) else record.name,
                                     _bot_pk(record))
        except Exception:
            self.handleError(record)


def _is_structlog(record: logging.LogRecord) -> bool:
    return isinstance(record.msg, dict)


def _bot_pk(record: logging.LogRecord) -> int | str | None:
    event = record.msg if isinstance(record.msg, dict) else {}
    bot = event.get("bot")
    return bot if isinstance(bot, int | str) else None


def entry_from_record(record: logging.LogRecord) -> LogEntry:
    """A record as plain, redacted strings (structlog passes its event dict as `msg`)."""
    if isinstance(record.msg, dict):
        event_dict: dict[str, Any] = record.msg
        event = str(event_dict.get("event", ""))
    else:
        event_dict = {}
        event = record.getMessage()
    bot = event_dict.get("username") or event_dict.get("bot") or ""
    fields = tuple(
        (str(key), _text(value, MAX_VALUE_CHARS))
        for key, value in event_dict.items()
        if key not in _OWN_KEYS
    )
    exception = ""
    exc_info = record.exc_info or event_dict.get("exc_info")
    if exc_info:
        exception = _text(_format_exception(exc_info), MAX_EXCEPTION_CHARS)
    return LogEntry(
        time=datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        level=record.levelname.lower(),
        logger=record.name,
        event=_text(event, MAX_VALUE_CHARS),
        bot=_text(bot, 64),
        fields=fields,
        exception=exception,
    )


def _format_exception(exc_info: Any) -> str:
    if exc_info is True:
        # structlog's exc_info=True: the exception being handled while logging.
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[0] is not None:
        return "".join(traceback.format_exception(*exc_info))
    return ""


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"

