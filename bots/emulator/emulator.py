"""`TelegramEmulator`: the object tests, the demo and benchmarks hold.

It is the world (people.py, world.py) plus what a test needs around the wire:
the HTTP server's lifecycle, the call log, injected faults and flood limits.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from bots.emulator.errors import ApiError
from bots.emulator.faults import Delay, Fault, FloodLimiter
from bots.emulator.people import People
from bots.emulator.recording import Call, CallLog
from bots.emulator.state import User


class DropConnection(Exception):
    """Close the client's connection without answering."""


class TelegramEmulator(People):
    """A Telegram Bot API server on 127.0.0.1 with state a test can drive and inspect.

    All methods run on the event loop the server was started on.
    """

    def __init__(self, *, webhook_retry_delay: float = 0.5) -> None:
        super().__init__()
        self.log = CallLog()
        self.faults: dict[str, list[Fault]] = {}
        self.delays: dict[str, list[Delay]] = {}
        self.bot_commands: dict[tuple[int, str, str], list[dict[str, str]]] = {}
        self.webhook_retry_delay = webhook_retry_delay
        self.api_url: str = ""
        self._flood: FloodLimiter | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); returns and sets `api_url`."""
        from bots.emulator.server import build_app

        # handler_cancellation: a client that hangs up ends its long poll, as on Telegram.
        self._runner = web.AppRunner(
            build_app(self), access_log=None, handle_signals=False, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024)
        await site.start()
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        self.api_url = f"http://{host}:{bound[1]}"
        return self.api_url

    async def stop(self) -> None:
        """Answer parked long polls at once, stop webhooks, close the server."""
        for inbox in self.inboxes.values():
            inbox.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def http_session(self) -> aiohttp.ClientSession:
        """The client that delivers webhooks (created on first use, closed by `stop`)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    # --- the call log -----------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        return self.log.calls

    def calls_named(self, method: str | None = None, **filters: Any) -> list[Call]:
        """Recorded calls of `method` whose parameters equal the filters (ids or objects)."""
        return self.log.named(method, **filters)

    # `timeout=` is part of the interface the other apps' tests were written against.
    async def wait_for_call(
        self,
        method: str | None,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int = 0,
        **filters: Any,
    ) -> Call:
        """The first matching call from index `since` on, awaiting it if none yet.

        Pass `since=len(emu.calls)` to wait only for calls made after that point.
        Raises TimeoutError naming what was seen instead.
        """
        return await self.log.wait_for(method, timeout, since, filters)

    async def wait_for_poll(self, bot: User, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Return once a getUpdates call of `bot` is parked waiting for updates."""
        await asyncio.wait_for(self.inboxes[bot.id].parked.wait(), timeout)

    def record(self, call: Call) -> None:
        self.log.record(call)

    # --- breaking things --------------------------------------------------------------

    def fail(
        self,
        method: str,
        chat_id: int | Any | None = None,
        error_code: int = 429,
        retry_after: int | None = 3,
        times: int | None = 1,
        description: str | None = None,
    ) -> Fault:
        """Answer the next `times` calls of `method` (in `chat_id`) with an error.

        429 answers carry `parameters.retry_after`; other codes get Telegram's usual
        description unless one is given. `method="*"` matches every method but
        getUpdates; `times=None` keeps failing until `clear_faults()`.
        """
        fault = Fault(
            method=method.lower(),
            chat_id=getattr(chat_id, "id", chat_id),
            error_code=error_code,
            retry_after=retry_after if error_code == 429 else None,
            description=description,
            times=times,
        )
        self.faults.setdefault(fault.method, []).append(fault)
        return fault

    def drop(self, method: str, chat_id: int | Any | None = None, times: int | None = 1) -> Fault:
        """Close the connection of the next `times` calls without an answer."""
        fault = Fault(
            method=method.lower(),
            chat_id=getattr(chat_id, "id", chat_id),
            error_code=None,
            retry_after=None,
            description=None,
            times=times,
            drop=True,
        )
        self.faults.setdefault(fault.method, []).append(fault)
        return fault

    def delay(self, method: str, seconds: float, chat_id: int | Any | None = None) -> None:
        """Add latency to every call of `method` (in `chat_id`) until `clear_faults()`.

        `seconds` is the round trip: half passes before the call takes effect (the
        request on its way), half after its answer is ready (on its way back), and the
        answer is encoded meanwhile, as Telegram encodes on its own machines: the
        emulator's work in the caller's process then adds nothing on top of it.
        """
        entry = Delay(method.lower(), seconds, getattr(chat_id, "id", chat_id))
        self.delays.setdefault(entry.method, []).append(entry)

    def clear_faults(self) -> None:
        self.faults.clear()
        self.delays.clear()

    @property
    def flood_limits(self) -> bool:
        return self._flood is not None

    @flood_limits.setter
    def flood_limits(self, value: bool | FloodLimiter) -> None:
        """True enforces Telegram's usual limits; a FloodLimiter sets custom ones."""
        if isinstance(value, FloodLimiter):
            self._flood = value
        else:
            self._flood = FloodLimiter() if value else None

    def latency(self, method: str, params: dict[str, Any]) -> float:
        """The round trip added to this call by `delay()`, in seconds (the hot path)."""
        if not self.delays:
            return 0.0
        chat_id = params.get("chat_id")
        return sum(entry.seconds for entry in self.delays.get(method, ())
                   if entry.chat_id is None or str(entry.chat_id) == str(chat_id))

    async def before_call(self, bot: User, method: str, params: dict[str, Any],
                          latency: float = 0.0) -> None:
        """The request's half of `latency`, injected faults and flood limits, in that
        order (the hot path)."""
        chat_id = params.get("chat_id")
        if latency:
            await asyncio.sleep(latency / 2)
        if self.faults:
            self._inject(method, chat_id)
        if self._flood is not None:
            is_group = not (isinstance(chat_id, int) and chat_id > 0)
            self._flood.check(bot.id, method, chat_id, is_group)

    def _inject(self, method: str, chat_id: Any) -> None:
        candidates = list(self.faults.get(method, ()))
        if method != "getupdates":
            candidates += self.faults.get("*", [])
        for fault in candidates:
            if not fault.matches(chat_id):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults[fault.method].remove(fault)
            if fault.drop:
                raise DropConnection
            raise fault.to_error()


__all__ = ["ApiError", "TelegramEmulator"]
