"""The event the engine publishes for every enforcement decision it acts on.

The engine knows nothing of analytics or the dashboard. runbot's composition
root (`nezuko.runtime`) builds the event recorder with its subscribers
(analytics' folding, the dashboard's live feed); `publish()` hands each event
to them. Subscribers must be cheap and must not raise: they run on the
engine's event loop (buffer, then do real work elsewhere).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
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


def publish(event: VerificationEventData, subscribers: Iterable[Subscriber]) -> None:
    """Hand `event` to each subscriber; one that raises is logged and skipped."""
    for callback in subscribers:
        try:
            callback(event)
        except Exception:
            # A broken subscriber must never break enforcement.
            logger.exception("events.subscriber_failed", subscriber=repr(callback))
