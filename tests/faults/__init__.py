"""The fault suite: runbot crashed, its database and Redis taken away, Telegram refusing.

Each test starts what it breaks (a throw-away PostgreSQL cluster, a
redis-server on its own port, a runbot child process), drives a raid through
the Bot API emulator and prints `lost=… doubled=… owed=… recovered_in=…`.
Run with `pytest -m faults` on the PostgreSQL + Redis pass (docs/operations.md).
"""
