"""The live feed websocket: `/ws/feed/` (every visible group) or `/ws/feed/<id>/`.

Subscribing goes through the same gate as the pages. Events arrive as data
(`verification.events` messages); a burst is coalesced for `COALESCE_SECONDS`
and sent as one HTML frame: new `_feed_row.html` rows prepended out-of-band to
`#feed-rows`, plus the overview figures and its last-hour chart, also
out-of-band. Every element of a frame has an id the page holds, so htmx finds
a target for each (a stray `<tr>` would be wrapped in an id-less tbody). During a raid the
browser gets four frames a second, not one per event.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import translation

from dashboard import access, figures, language, live
from dashboard.twofactor import needs_second_factor
from groups import rights
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
# Rights follow Telegram: an open socket re-reads what its user may see this
# often, and at once when the engine reports a change to their admin rights.
RECHECK_SECONDS = 5.0


class LiveFeedConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.language = settings.LANGUAGE_CODE
        self.pending: list[VerificationEventData] = []
        self.flush_task: asyncio.Task | None = None
        self.joined: list[str] = []
        self.allowed: set[int] | None = None
        self.rights_name: str | None = None
        self.recheck_task: asyncio.Task | None = None
        # Only the overview (every group) shows the figures.
        self.with_figures = self.scope["url_route"]["kwargs"].get("group_id") is None
        self.figures_at = float("-inf")
        if self.user is None or not self.user.is_authenticated or \
                await database_sync_to_async(needs_second_factor)(self.user,
                                                                  self.scope.get("session", {})):
            # A staff password without its second factor opens no page, nor this.
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # Frames are rendered in the language of the page that opened the socket
        # (the session is read from the database: off the event loop).
        self.language = await database_sync_to_async(language.for_scope)(self.scope)
        try:
            self.joined = await database_sync_to_async(self.subscriptions)()
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        for name in self.joined:
            await self.channel_layer.group_add(name, self.channel_name)
        await self.watch_rights()
        await self.accept()

    def subscriptions(self) -> list[str]:
        """Channel-layer groups this user may join; Http404 for a foreign group."""
        group_id = self.scope["url_route"]["kwargs"].get("group_id")
        if group_id is not None:
            pk = access.get_group_for(self.user, group_id).pk
            self.allowed = None if access.sees_everything(self.user) else {pk}
            return [live.feed_group(pk)]
        group_ids = access.visible_group_ids(self.user)
        self.allowed = None if group_ids is None else set(group_ids)
        if group_ids is None:
            return [live.ALL_GROUPS_FEED]
        return [live.feed_group(pk) for pk in group_ids]

    async def disconnect(self, code: int) -> None:
        for name in self.joined:
            await self.channel_layer.group_discard(name, self.channel_name)
        if self.flush_task is not None:
            self.flush_task.cancel()
        await self.unwatch_rights()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The feed is one-way; anything the browser sends is ignored.
        return

    async def verification_event(self, message: dict[str, Any]) -> None:
        try:
            event = VerificationEventData.from_message(message)
        except (KeyError, TypeError, ValueError):
            logger.warning("live.bad_message")
            return
        if not self.may_see(event):
            return  # from a group lost since this socket joined it
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
        with translation.override(self.language):
            return render_to_string("dashboard/_feed_update.html", {
                "rows": rows,
                "more": len(batch) - len(shown),
                "figures": figures.overview(self.user) if with_figures else None,
                # The overview's chart moves with the same frames as its figures.
                "last_hour": figures.last_hour(self.user) if with_figures else None,
                "oob": True,
            })

    # --- rights follow Telegram: re-check what this socket may carry -------------------

    def may_see(self, event: VerificationEventData) -> bool:
        return self.allowed is None or event.group_id in self.allowed

    async def watch_rights(self) -> None:
        """Listen for this user's rights changes and re-check on a timer as well."""
        telegram_id = await database_sync_to_async(access.telegram_id_of)(self.user)
        if telegram_id is not None and self.allowed is not None:
            self.rights_name = rights.rights_feed(telegram_id)
            await self.channel_layer.group_add(self.rights_name, self.channel_name)
        self.recheck_task = asyncio.get_running_loop().create_task(self._recheck_every())

    async def unwatch_rights(self) -> None:
        if self.rights_name is not None:
            await self.channel_layer.group_discard(self.rights_name, self.channel_name)
        if self.recheck_task is not None:
            self.recheck_task.cancel()

    async def rights_changed(self, message: dict[str, Any]) -> None:
        """The engine saw this user's admin rights change in some group."""
        await self.recheck_access()

    async def _recheck_every(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            try:
                if not await self.recheck_access():
                    return
            except Exception:
                # A database blip: keep what was allowed and try again next time.
                logger.warning("live.recheck_failed", exc_info=True)

    async def recheck_access(self) -> bool:
        """Re-read the user and what they may see now; leave what they lost.

        A one-group socket whose group is gone closes with CLOSE_NOT_FOUND; the
        overview socket leaves the lost groups' feeds (and joins new ones).
        Returns False once the socket is closed.
        """
        user = await database_sync_to_async(self._fresh_user)()
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        self.user = user
        try:
            names = await database_sync_to_async(self.subscriptions)()
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return False
        for name in set(self.joined) - set(names):
            await self.channel_layer.group_discard(name, self.channel_name)
        for name in set(names) - set(self.joined):
            await self.channel_layer.group_add(name, self.channel_name)
        self.joined = names
        self.pending = [event for event in self.pending if self.may_see(event)]
        return True

    def _fresh_user(self) -> Any:
        """The user as the database has them now; None once gone or deactivated."""
        user = get_user_model()._default_manager.filter(pk=self.user.pk).first()
        return user if user is not None and user.is_active else None


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
