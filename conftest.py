"""Fixtures shared by every app's tests."""

# The Bot API emulator fixtures (`emulator`, ...) live beside the emulator.
pytest_plugins = ["bots.testing"]
