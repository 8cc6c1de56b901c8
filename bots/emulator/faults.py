"""Breaking things on purpose: injected errors, latency, dropped connections, flood limits."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

from bots.emulator.errors import ApiError, too_many_requests

DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected failure",
    403: "Forbidden: injected failure",
    409: "Conflict: injected failure",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# Methods that send a message into a chat: the ones Telegram's per-chat limits count.
SENDING_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendvideo",
        "sendaudio",
        "sendanimation",
        "sendsticker",
        "sendpoll",
        "forwardmessage",
        "copymessage",
    }
)
# Long polling and webhook housekeeping do not count against the request budget.
UNCOUNTED_METHODS = frozenset({"getupdates", "setwebhook", "deletewebhook", "getwebhookinfo"})


@dataclass
class Fault:
    """An injected failure for one method, optionally only for one chat.

    `times=None` fails every matching call until `clear_faults()`.
    `error_code=None` with `drop=True` closes the connection without an answer.
    """

    method: str  # lower-case Bot API method name, or "*" for every method
    chat_id: int | None
    error_code: int | None
    retry_after: int | None
    description: str | None
    times: int | None
    drop: bool = False

    def matches(self, chat_id: int | str | None) -> bool:
        return self.chat_id is None or str(self.chat_id) == str(chat_id)

    def to_error(self) -> ApiError:
        code = self.error_code or 500
        if code == 429:
            retry = self.retry_after if self.retry_after is not None else 1
            error = too_many_requests(retry)
            if self.description:
                error.description = self.description
            return error
        description = self.description or DEFAULT_DESCRIPTIONS.get(code, f"Error {code}")
        return ApiError(code, description, retry_after=self.retry_after)


@dataclass
class Delay:
    method: str
    seconds: float
    chat_id: int | None = None


class FloodLimiter:
    """Telegram-like limits: per bot per second, per group per minute, per chat per second.

    Sliding windows of timestamps; a call over a limit answers 429 with the
    seconds until the oldest counted call leaves its window.
    """

    def __init__(
        self, per_bot_per_second: int = 30, group_per_minute: int = 20, chat_per_second: int = 1
    ) -> None:
        self.per_bot_per_second = per_bot_per_second
        self.group_per_minute = group_per_minute
        self.chat_per_second = chat_per_second
        self._bot: dict[int, deque[float]] = {}
        self._group: dict[tuple[int, int], deque[float]] = {}
        self._chat: dict[tuple[int, int], deque[float]] = {}

    def check(self, bot_id: int, method: str, chat_id: int | None, is_group: bool) -> None:
        """Count the call, or raise the 429 Telegram would answer."""
        if method in UNCOUNTED_METHODS:
            return
        at = time.monotonic()
        windows: list[tuple[deque[float], int, float]] = [
            (self._bot.setdefault(bot_id, deque()), self.per_bot_per_second, 1.0)
        ]
        if method in SENDING_METHODS and chat_id is not None:
            key = (bot_id, chat_id)
            if is_group:
                windows.append((self._group.setdefault(key, deque()), self.group_per_minute, 60.0))
            else:
                windows.append((self._chat.setdefault(key, deque()), self.chat_per_second, 1.0))
        for stamps, limit, span in windows:
            while stamps and stamps[0] <= at - span:
                stamps.popleft()
            if len(stamps) >= limit:
                raise too_many_requests(max(1, math.ceil(stamps[0] + span - at)))
        for stamps, _, _ in windows:
            stamps.append(at)
