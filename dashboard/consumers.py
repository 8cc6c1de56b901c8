"""The live feed websocket: `/ws/feed/` (every visible group) or `/ws/feed/<id>/`.

Subscribing goes through the same gate as the pages. Events arrive as data
(`verification.events` messages); a burst is coalesced for `COALESCE_SECONDS`
and sent as one HTML frame: new `_feed_row.html` rows prepended out-of-band to
`#feed-rows`, plus the overview figures, also out-of-band. During a raid the
browser gets four frames a second, not one per event.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from django.template.loader import render_to_string

from dashboard import access, figures, live
from groups.models import ProtectedGroup
from verification.events import VerificationEventData

logger = structlog.get_logger(__name__)

COALESCE_SECONDS = 0.25
# The overview's figures cost a dozen queries: refresh them at most this often.
FIGURES_EVERY_SECONDS = 1.0
# Rows sent per frame; the rest of a burst is summarised as "N more".
MAX_ROWS_PER_FRAME = 25
CLOSE_NOT_FOUND = 4404
CLOSE_UNAUTHENTICATED = 4401


class LiveFeedConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.pending: list[VerificationEventData] = []
        self.flush_task: asyncio.Task | None = None
        self.joined: list[str] = []
        # Only the overview (every group) shows the figures.
        self.with_figures = self.scope["url_route"]["kwargs"].get("group_id") is None
        self.figures_at = float("-inf")
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        try:
            self.joined = await database_sync_to_async(self.subscriptions)()
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        for name in self.joined:
            await self.channel_layer.group_add(name, self.channel_name)
        await self.accept()

    def subscriptions(self) -> list[str]:
        """Channel-layer groups this user may join; Http404 for a foreign group."""
        group_id = self.scope["url_route"]["kwargs"].get("group_id")
        if group_id is not None:
            return [live.feed_group(access.get_group_for(self.user, group_id).pk)]
        group_ids = access.visible_group_ids(self.user)
        if group_ids is None:
            return [live.ALL_GROUPS_FEED]
        return [live.feed_group(pk) for pk in group_ids]

    async def disconnect(self, code: int) -> None:
        for name in self.joined:
            await self.channel_layer.group_discard(name, self.channel_name)
        if self.flush_task is not None:
            self.flush_task.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The feed is one-way; anything the browser sends is ignored.
        return

    async def verification_event(self, message: dict[str, Any]) -> None:
        try:
            event = VerificationEventData.from_message(message)
        except (KeyError, TypeError, ValueError):
            logger.warning("live.bad_message")
            return
        self.pending.append(event)
        if self.flush_task is None:
            self.flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        await self.flush()

    async def flush(self) -> int:
        """Sends what is pending as one frame; returns the number of events in it."""
        batch, self.pending, self.flush_task = self.pending, [], None
        if not batch:
            return 0
        now = asyncio.get_running_loop().time()
        with_figures = self.with_figures and now - self.figures_at >= FIGURES_EVERY_SECONDS
        if with_figures:
            self.figures_at = now
        html = await database_sync_to_async(self.render)(batch, with_figures)
        await self.send(text_data=html)
        return len(batch)

    def render(self, batch: list[VerificationEventData], with_figures: bool = True) -> str:
        newest_first = sorted(batch, key=lambda e: e.created_at, reverse=True)
        shown = newest_first[:MAX_ROWS_PER_FRAME]
        titles = dict(
            ProtectedGroup.objects.filter(pk__in={e.group_id for e in shown if e.group_id})
            .values_list("pk", "title")
        )
        rows = [feed_row(event, titles) for event in shown]
        return render_to_string("dashboard/_feed_update.html", {
            "rows": rows,
            "more": len(batch) - len(shown),
            "figures": figures.overview(self.user) if with_figures else None,
            "oob": True,
        })


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Every websocket path no route matches: refused at the handshake (HTTP 403)."""

    async def connect(self) -> None:
        await self.close(code=CLOSE_NOT_FOUND)


def feed_row(event: VerificationEventData, titles: dict[int, str]) -> dict[str, Any]:
    """What `_feed_row.html` shows, the same shape for events from the database."""
    return {
        "created_at": event.created_at,
        "outcome": event.outcome,
        "group_id": event.group_id,
        "group_title": titles.get(event.group_id, "") if event.group_id else "",
        "user_id": event.user_id,
        "user_name": event.user_name,
        "latency_ms": event.latency_ms,
        "cache_hit": event.cache_hit,
        "missing": len(event.missing_channel_ids),
        "detail": event.detail,
    }
