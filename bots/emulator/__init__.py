"""A Telegram Bot API emulator: a real HTTP server with Telegram's state and rules.

See docs/emulator.md. Tests get one from the `emulator` fixture (bots/testing.py).
"""

from bots.emulator.emulator import TelegramEmulator
from bots.emulator.errors import ApiError, EmulatorError
from bots.emulator.faults import FloodLimiter
from bots.emulator.recording import Call
from bots.emulator.state import Chat, User

__all__ = ["ApiError", "Call", "Chat", "EmulatorError", "FloodLimiter", "TelegramEmulator", "User"]
