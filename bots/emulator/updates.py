"""Each bot's update queue, delivered by getUpdates long polling or by webhook.

Telegram keeps one queue per bot: update_id increases per bot, an update stays
until a later `offset` confirms it (or the webhook answers 2xx), and
`allowed_updates` is remembered from the last getUpdates/setWebhook that gave it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp

from bots.emulator.errors import ApiError
from bots.emulator.state import now

# Telegram's default when allowed_updates was never given (or given as []).
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
FIRST_UPDATE_ID = 100_000_001
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(slots=True)
class Update:
    update_id: int
    kind: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"update_id": self.update_id, self.kind: self.payload}


@dataclass
class Webhook:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0


class Inbox:
    """One bot's pending updates and how they leave: polled or POSTed."""

    def __init__(self, bot_id: int) -> None:
        self.bot_id = bot_id
        self.pending: deque[Update] = deque()
        self.last_update_id = FIRST_UPDATE_ID - 1
        self.allowed: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.allowed_list: list[str] | None = None
        self.webhook: Webhook | None = None
        self.webhook_task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        self._poll_generation = 0
        # Set while a getUpdates call is parked waiting for an update.
        self.parked = asyncio.Event()
        self.closed = False

    # --- producing -------------------------------------------------------------

    def push(self, kind: str, payload: dict[str, Any]) -> Update:
        self.last_update_id += 1
        update = Update(self.last_update_id, kind, payload)
        self.pending.append(update)
        self._arrived.set()
        return update

    def wants(self, kind: str) -> bool:
        """Is this update type among the ones the bot last asked for?"""
        return kind in self.allowed

    def set_allowed(self, allowed: list[str] | None) -> None:
        # None keeps the previous setting; [] means Telegram's default.
        if allowed is None:
            return
        self.allowed_list = list(allowed)
        self.allowed = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES

    # --- getUpdates ------------------------------------------------------------

    def confirm(self, offset: int) -> None:
        """Forget updates before `offset`; a negative offset keeps only the last -offset."""
        if offset < 0:
            while len(self.pending) > -offset:
                self.pending.popleft()
            return
        while self.pending and self.pending[0].update_id < offset:
            self.pending.popleft()

    def take(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` unconfirmed updates of the types the bot asks for.

        Unwanted ones are skipped, not removed: the next offset confirms them.
        """
        batch: list[dict[str, Any]] = []
        for update in self.pending:
            if update.kind in self.allowed:
                batch.append(update.to_json())
                if len(batch) >= limit:
                    break
        return batch

    async def get_updates(
        self, offset: int | None, limit: int, wait: float, allowed: list[str] | None
    ) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self.set_allowed(allowed)
        if offset:
            self.confirm(offset)
        # A newer getUpdates ends an older one waiting, as Telegram does.
        self._poll_generation += 1
        generation = self._poll_generation
        self._arrived.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self.take(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self.closed:
                return batch
            self._arrived.clear()
            self.parked.set()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), remaining)
            finally:
                if generation == self._poll_generation:
                    self.parked.clear()

    # --- webhook ---------------------------------------------------------------

    def set_webhook(self, webhook: Webhook, session: aiohttp.ClientSession, retry: float) -> None:
        self.delete_webhook()
        self.webhook = webhook
        # Waiting getUpdates calls see the webhook and stop with a conflict.
        self._poll_generation += 1
        self._arrived.set()
        self.webhook_task = asyncio.get_running_loop().create_task(
            self._deliver(webhook, session, retry), name=f"emulator-webhook-{self.bot_id}"
        )

    def close(self) -> None:
        """Answer a parked getUpdates now and stop webhook delivery (server shutdown)."""
        self.closed = True
        self._arrived.set()
        self.delete_webhook()

    def delete_webhook(self) -> None:
        self.webhook = None
        if self.webhook_task is not None:
            self.webhook_task.cancel()
            self.webhook_task = None

    def drop_pending(self) -> None:
        self.pending.clear()

    async def _deliver(
        self, webhook: Webhook, session: aiohttp.ClientSession, retry: float
    ) -> None:
        """POST updates one at a time, in order; a failed one is re-sent until it is taken."""
        headers = {"Content-Type": "application/json"}
        if webhook.secret_token:
            headers[SECRET_HEADER] = webhook.secret_token
        delay = retry
        while True:
            update = self._next_allowed()
            if update is None:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            error = await self._post(session, webhook.url, update, headers)
            if error is None:
                if self.pending and self.pending[0] is update:
                    self.pending.popleft()
                webhook.delivered += 1
                delay = retry
                continue
            webhook.last_error_date, webhook.last_error_message = now(), error
            await asyncio.sleep(delay)
            # Telegram backs off while a webhook keeps failing; capped so tests stay quick.
            delay = min(delay * 2, max(retry, 60.0))

    def _next_allowed(self) -> Update | None:
        while self.pending and self.pending[0].kind not in self.allowed:
            self.pending.popleft()
        return self.pending[0] if self.pending else None

    @staticmethod
    async def _post(
        session: aiohttp.ClientSession, url: str, update: Update, headers: dict[str, str]
    ) -> str | None:
        """Deliver one update; the error text Telegram would show in getWebhookInfo, or None."""
        try:
            async with session.post(
                url, data=json.dumps(update.to_json()), headers=headers
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"Connection failed: {type(exc).__name__}"

    def webhook_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": sum(1 for u in self.pending if u.kind in self.allowed),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.last_error_date:
                info["last_error_date"] = self.webhook.last_error_date
                info["last_error_message"] = self.webhook.last_error_message
            if self.allowed_list is not None:
                info["allowed_updates"] = self.allowed_list
        return info
