"""The event the engine publishes for every enforcement decision it acts on.

The engine knows nothing of analytics or the dashboard. At start-up those apps
`subscribe()` a callback; `publish()` hands each event to every subscriber in
the same process. Subscribers must be cheap and must not raise: they run on
the engine's event loop (buffer, then do real work elsewhere).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

import structlog
from django.utils import timezone

logger = structlog.get_logger(__name__)

EVENT_TYPE = "verification.event"


@dataclasses.dataclass(frozen=True, slots=True)
class VerificationEventData:
    outcome: str  # verification.models.Outcome value
    bot_id: int | None  # BotInstance pk
    group_id: int | None  # ProtectedGroup pk
    chat_id: int
    user_id: int
    user_name: str = ""
    missing_channel_ids: tuple[int, ...] = ()
    latency_ms: float | None = None
    cache_hit: bool | None = None
    detail: str = ""
    created_at: datetime = dataclasses.field(default_factory=timezone.now)

    def as_message(self) -> dict:
        """The channel-layer message: plain data, never HTML."""
        data = dataclasses.asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["missing_channel_ids"] = list(self.missing_channel_ids)
        return {"type": EVENT_TYPE.replace(".", "_"), "event": data}

    @classmethod
    def from_message(cls, message: dict) -> VerificationEventData:
        data = dict(message["event"])
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["missing_channel_ids"] = tuple(data.get("missing_channel_ids") or ())
        return cls(**data)


Subscriber = Callable[[VerificationEventData], None]
_subscribers: list[Subscriber] = []


def subscribe(callback: Subscriber) -> None:
    if callback not in _subscribers:
        _subscribers.append(callback)


def unsubscribe(callback: Subscriber) -> None:
    if callback in _subscribers:
        _subscribers.remove(callback)


def publish(event: VerificationEventData) -> None:
    for callback in list(_subscribers):
        try:
            callback(event)
        except Exception:
            # A broken subscriber must never break enforcement.
            logger.exception("events.subscriber_failed", subscriber=repr(callback))
