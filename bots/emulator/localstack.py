"""The whole of Nezuko on this machine, for the demo and the browser tests.

1. The Bot API emulator runs in this process (its people are driven from here).
2. `manage.py migrate` prepares a SQLite file in `workdir`.
3. `manage.py runbot` runs as a child process: the bots and the web app (admin,
   dashboard, API, websockets) on one loop, pointed at the emulator.
4. Alice, the group's owner, sends `/protect @catnews` in the group.

Nothing is faked past the wire: the dashboard a browser sees is the real one
served by the real runbot, and every Telegram effect goes through the emulator.
It lives beside the emulator, not in an app: it only drives the emulator and
runs `manage.py` as a child process, so it imports nothing above `bots`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import sys
import urllib.request
from pathlib import Path

from bots.emulator import TelegramEmulator
from bots.emulator.scene import Scene, make_scene

ROOT = Path(__file__).resolve().parents[2]  # the repository: bots/emulator/ is two down
MANAGE = str(ROOT / "manage.py")

# Debian's chromium (scripts/install-chromium.sh); Playwright never downloads a browser.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Stack:
    emulator: TelegramEmulator
    scene: Scene
    workdir: Path
    port: int
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "runbot.log"

    async def manage(self, *args: str) -> str:
        """Runs a management command against the stack's database; returns stdout."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, MANAGE, *args, env=self.env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed: {err.decode()[-2000:]}")
        return out.decode()

    async def login_link(self, who: str = "@alice") -> str:
        return (await self.manage("login_link", who)).strip()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self.emulator.stop()


def stack_env(workdir: Path, port: int, api_url: str, bot_token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "DEBUG": "true",
        "NEZUKO_READ_DOTENV": "false",
        "DATABASE_URL": f"sqlite:///{workdir / 'nezuko.sqlite3'}",
        # Its own spool: a journal left by an earlier stack (the same bot, update ids
        # from 1 again) would otherwise read as updates already handled.
        "NEZUKO_SPOOL_DIR": str(workdir / "spool"),
        "TELEGRAM_API_URL": api_url,
        "BOT_TOKEN": bot_token,
        "DASHBOARD_URL": f"http://127.0.0.1:{port}",
        "LOG_FORMAT": env.get("LOG_FORMAT", "console"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "WARNING"),
    })
    return env


async def wait_for_http(url: str, within: float, process: asyncio.subprocess.Process) -> None:
    """Until `url` answers 200; fails early if the server process died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    while not await asyncio.to_thread(probe):
        if process.returncode is not None:
            raise RuntimeError(f"runbot exited with {process.returncode}")
        if loop.time() > deadline:
            raise TimeoutError(f"{url} did not answer within {within:.0f} s")
        await asyncio.sleep(0.2)


async def start(workdir: Path, *, port: int = 0, emulator_port: int = 0) -> Stack:
    """Starts emulator and runbot and protects the Cats group; see the module docstring."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    emulator = TelegramEmulator()
    await emulator.start(host="127.0.0.1", port=emulator_port)
    scene = make_scene(emulator)
    port = port or free_port()
    stack = Stack(emulator, scene, workdir, port,
                  stack_env(workdir, port, emulator.api_url, scene.bot.token))
    try:
        await stack.manage("migrate", "--noinput")
        log = stack.log_path.open("ab")
        stack.process = await asyncio.create_subprocess_exec(
            sys.executable, MANAGE, "runbot", "--host", "127.0.0.1", "--port", str(port),
            env=stack.env, cwd=ROOT, stdout=log, stderr=log,
        )
        try:
            await wait_for_http(f"{stack.url}/healthz", 90, stack.process)
        except (RuntimeError, TimeoutError) as exc:
            tail = stack.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{exc}; runbot's log ends with:\n{tail}") from None
        await emulator.wait_for_poll(scene.bot, timeout=60)
        since = len(emulator.calls)
        emulator.send_message(scene.group, scene.alice, "/protect @catnews")
        await emulator.wait_for_call("sendMessage", timeout=30, since=since,
                                     chat_id=scene.group.id)
    except BaseException:
        with contextlib.suppress(Exception):
            await stack.stop()
        raise
    return stack
