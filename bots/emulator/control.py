"""A small JSON control API beside the Bot API, for scripts and the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bots.emulator.emulator import TelegramEmulator


def add_control_routes(app: web.Application, emu: TelegramEmulator) -> None:
    """Routes under /_emulator/ (filled in below)."""
