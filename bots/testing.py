"""pytest fixtures for the Bot API emulator (filled in by the emulator work)."""
