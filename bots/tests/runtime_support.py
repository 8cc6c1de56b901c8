"""Helpers shared by the runtime tests (supervisor, locks, command queue, runbot)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

# The project's bot factory, re-exported for the tests that import it from here.
from tests.factories import make_bot  # noqa: F401


def on_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def postgres_only(test: Callable) -> Callable:
    """Tests that need PostgreSQL carry the marker and skip cleanly on SQLite runs."""
    test = pytest.mark.postgres(test)
    return pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL (DATABASE_URL)")(test)


@pytest.fixture
async def close_db_threads() -> AsyncIterator[None]:
    """Close the connection the ORM opened in asgiref's thread, or PostgreSQL cannot
    drop the test database ("being accessed by other users")."""
    yield
    await sync_to_async(connections.close_all)()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Await `check()` until it is true: for conditions another process brings about.

    `within` guards against a hang; it is not a claim about speed.
    """
    async with asyncio.timeout(within):
        # Polling: the condition lives in another process or server, not an Event here.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def database_url() -> str:
    """A DATABASE_URL for the database this test run uses (the test database)."""
    params = connections["default"].settings_dict
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = params.get("HOST") or "127.0.0.1"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{params['NAME']}"


def child_env(**overrides: str) -> dict[str, str]:
    """The test's environment for a child process (same keys, so tokens decrypt)."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update({"NEZUKO_READ_DOTENV": "false", "LOG_FORMAT": "console", "LOG_LEVEL": "INFO"})
    # The test's own journals and spools (conftest points the setting at tmp_path): a
    # journal another test left behind belongs to another emulator's updates.
    env["NEZUKO_SPOOL_DIR"] = str(settings.NEZUKO_SPOOL_DIR)
    # And the test's own update bus keys (conftest gives each test a prefix).
    env["NEZUKO_BUS_PREFIX"] = settings.NEZUKO_BUS_PREFIX
    env.update(overrides)
    return env


class Child:
    """A `manage.py` child process whose output a test can wait on."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output: list[str] = []
        self._reader = asyncio.create_task(self._read())
        self._changed = asyncio.Event()

    @classmethod
    async def start(cls, *args: str, env: dict[str, str]) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            MANAGE,
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.output.append(line.decode(errors="replace"))
            self._changed.set()

    async def wait_for_output(self, text: str, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while not any(text in line for line in self.output):
                self._changed.clear()
                if self.process.returncode is not None:
                    raise AssertionError(f"exited before {text!r}:\n{''.join(self.output)}")
                await self._changed.wait()

    async def stop(self, sig: int = signal.SIGTERM, within: float = 60.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        async with asyncio.timeout(within):
            code = await self.process.wait()
            await self._reader
        return code

    async def wait(self, within: float = 120.0) -> int:
        """Wait for the child to exit by itself."""
        async with asyncio.timeout(within):
            code = await self.process.wait()
            await self._reader
        return code


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def web_runbot(scene, tmp_path: Path, **env: str) -> AsyncIterator[tuple[Child, int]]:
    """`runbot` with its web server on a free port, for the scene's bot, on a SQLite file
    of its own (migrated first), once it reports the bot running; yields it and its port.
    Killed at the end if the test did not stop it."""
    child_env_ = child_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'nezuko.sqlite3'}",
        TELEGRAM_API_URL=scene.emulator.api_url,
        BOT_TOKEN=scene.bot.token,
        REDIS_URL="",
        **env,
    )
    migrate = await Child.start("migrate", "--noinput", "-v0", env=child_env_)
    assert await migrate.wait() == 0, "".join(migrate.output)
    port = free_port()
    runbot = await Child.start("runbot", "--host", "127.0.0.1", "--port", str(port),
                               env=child_env_)
    try:
        await runbot.wait_for_output("bot.running", within=60)
        yield runbot, port
    finally:
        if runbot.process.returncode is None:
            await runbot.stop(signal.SIGKILL)
