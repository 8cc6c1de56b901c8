"""Per-person throttling of interactions with a bot, beside the rate limiter.

The rate limiter (`bots.ratelimit`) paces what a bot sends so Telegram's
limits hold; it cannot tell a member who sends /status six times in a minute
from an owner setting a group up, and each answer spends the group's 20
messages a minute that warnings need. `PersonThrottle` answers the first
interaction of a person in a chat and ignores the next ones for `interval`
seconds; ignored interactions cost no Telegram call and are counted in
metrics (`nezuko_throttled_total`).

Process memory only: the updates of one chat are handled by one worker at a
time (DESIGN.md, the update path), so one person's commands in one chat meet
the same throttle; after a restart a person may get one answer more.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bots import metrics

MAX_ENTRIES = 50_000  # past this many (chat, person) pairs, expired ones are dropped


class PersonThrottle:
    def __init__(self, kind: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.kind = kind  # the metrics label: "command", ...
        self.clock = clock
        self._last: dict[tuple[int, int], tuple[float, float]] = {}  # -> (when, interval)

    def allow(self, chat_id: int, user_id: int, interval: float) -> bool:
        """True (and counted as the window's answer) when the person may be answered now;
        False, counted as throttled, within `interval` seconds of their last answer."""
        if interval <= 0:
            return True
        now = self.clock()
        key = (chat_id, user_id)
        last = self._last.get(key)
        if last is not None and now - last[0] < last[1]:
            metrics.record_throttled(self.kind)
            return False
        if len(self._last) >= MAX_ENTRIES:
            self._last = {k: v for k, v in self._last.items() if now - v[0] < v[1]}
        self._last[key] = (now, interval)
        return True

    def forget(self, chat_id: int, user_id: int) -> None:
        """They turned out to be someone never throttled (an admin): clear their window."""
        self._last.pop((chat_id, user_id), None)
