"""Which rate-limiter priority a Bot API call gets.

One limiter per bot token (`bots.ratelimit`) orders calls by priority, so the
order below decides who waits during a raid:

* P0: a person is waiting for this answer (button answers, unmutes, join
  approvals, command replies, the reads those need). Telegram expects a
  callback answer within seconds, so these go ahead of enforcement.
* P1: enforcement (restrict, delete, warn, membership checks for it).
* P2: bulk work nobody waits for (admin list refreshes, warming the cache,
  declining stale join requests).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bots.ratelimit import Priority, priority


@contextlib.contextmanager
def call_at(level: str) -> Iterator[None]:
    """Bot API calls made inside get priority `level` ("P0", "P1" or "P2")."""
    with priority(Priority[level]):
        yield
