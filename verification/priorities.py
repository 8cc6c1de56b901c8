"""Which rate-limiter priority a Bot API call gets.

One limiter per bot token (`bots.ratelimit`) orders calls by priority, so the
order below decides who waits during a raid:

* P0: a person is waiting for this answer (button answers, unmutes, join
  approvals, command replies, the reads those need). Telegram expects a
  callback answer within seconds, so these go ahead of enforcement.
* P1: enforcement (restrict, delete, warn, membership checks for it).
* P2: bulk work nobody waits for (admin list refreshes, warming the cache,
  declining stale join requests) and scheduled background work: the
  check-up and refreshing membership answers before they expire run inside
  `in_background()`, which holds every call at P2 even when the read it
  reuses asks for more.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bots.ratelimit import Priority, background, priority


@contextlib.contextmanager
def call_at(level: str) -> Iterator[None]:
    """Bot API calls made inside get priority `level` ("P0", "P1" or "P2")."""
    with priority(Priority[level]):
        yield


@contextlib.contextmanager
def in_background() -> Iterator[None]:
    """Bot API calls made inside go at the lowest priority (P2), whatever they ask."""
    with background(Priority.P2):
        yield
