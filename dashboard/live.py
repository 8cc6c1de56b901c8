"""From the engine's in-process events to the channel layer, as data.

runbot's composition root creates one `LiveFeed` and gives its `forward` to
the event recorder as a subscriber. It runs on the engine's event loop, so it
only schedules the send and returns; a failing channel layer is logged, never
raised into enforcement.
"""

from __future__ import annotations

import asyncio

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from verification.events import VerificationEventData

logger = structlog.get_logger(__name__)

# Staff watch every group through this one channel-layer group.
ALL_GROUPS_FEED = "feed.all"


def feed_group(group_pk: int) -> str:
    return f"group.{group_pk}"


def targets(event: VerificationEventData) -> list[str]:
    names = [ALL_GROUPS_FEED]
    if event.group_id is not None:
        names.append(feed_group(event.group_id))
    return names


async def send(event: VerificationEventData) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = event.as_message()
    for name in targets(event):
        try:
            await layer.group_send(name, message)
        except Exception:
            logger.exception("live.send_failed", group=name)


class LiveFeed:
    """Forwards events to the browsers watching them; owns the sends in flight."""

    def __init__(self) -> None:
        # The loop keeps only weak references to tasks: without these a send could
        # be garbage-collected mid-flight.
        self._sending: set[asyncio.Task] = set()

    @property
    def sending(self) -> int:
        return len(self._sending)

    def forward(self, event: VerificationEventData) -> None:
        """Subscriber: schedule the send on the running loop, or send now without one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(send)(event)
            return
        task = loop.create_task(send(event))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
