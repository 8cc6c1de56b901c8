"""How every Bot API call is made: its rate-limiter priority and shared constants."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bots.ratelimit import Priority, priority

PERMISSIONS_TTL = 300.0
# BadRequest texts that mean "not a member" rather than "cannot tell".
NOT_A_MEMBER = ("user not found", "participant_id_invalid", "member not found",
                "user_not_participant")


@contextlib.contextmanager
def _p(level: str) -> Iterator[None]:
    """Calls inside get this priority (P0 a person waits, P1 enforcement, P2 bulk)."""
    with priority(Priority[level]):
        yield
