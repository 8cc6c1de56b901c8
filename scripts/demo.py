"""`make demo`: Nezuko running against the Bot API emulator with a busy community.

Starts the emulator, `runbot` with the web app, and a community that joins,
chats, leaves and rejoins the channel, and raids now and then. Prints the
dashboard URL, a one-time login link for the group owner (Alice) and a staff
account. Ctrl-C stops everything. Nothing reaches Telegram.

    .venv/bin/python scripts/demo.py [--port 8000] [--duration SECONDS] [--screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nezuko.settings")
os.environ.setdefault("DEBUG", "true")
os.environ["NEZUKO_READ_DOTENV"] = "false"
os.environ.setdefault("LOG_LEVEL", "WARNING")

STAFF_USER, STAFF_PASSWORD = "admin", "nezuko-demo"
LINK_EVERY = 240  # login links live five minutes


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the Nezuko demo.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--duration", type=float, default=0, help="stop after N seconds")
    parser.add_argument("--screenshots", action="store_true",
                        help="after 75 seconds, save docs/screenshots/{overview,analytics}.png")
    return parser.parse_args()


async def take_screenshots(stack, out: Path) -> None:
    from playwright.async_api import async_playwright

    from bots.emulator.localstack import CHROMIUM, CHROMIUM_ARGS

    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(await stack.login_link("@alice"))
        await page.click("#continue")
        await page.wait_for_selector("#feed-rows tr.feed-row")
        await page.screenshot(path=str(out / "overview.png"), full_page=True)
        await page.goto(f"{stack.url}/analytics/?period=24h&granularity=hour")
        await page.wait_for_selector("#charts svg.svg-chart rect")
        await page.screenshot(path=str(out / "analytics.png"), full_page=True)
        await browser.close()
    print(f"Saved {out / 'overview.png'} and {out / 'analytics.png'}")


async def main(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from bots.emulator import localstack
    from bots.emulator.community import Community

    workdir = ROOT / "var" / "demo"
    (workdir / "nezuko.sqlite3").unlink(missing_ok=True)
    print("Starting the Bot API emulator and runbot (first start migrates a fresh database)…")
    stack = await localstack.start(workdir, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    traffic: asyncio.Task | None = None
    try:
        stack.env["DJANGO_SUPERUSER_PASSWORD"] = STAFF_PASSWORD
        await stack.manage("createsuperuser", "--noinput", "--username", STAFF_USER,
                           "--email", "admin@example.invalid")
        community = Community(stack.scene)
        traffic = asyncio.create_task(community.play(stop))
        print(f"""
Nezuko demo is running.

  Dashboard   {stack.url}/
  Owner       Alice owns the group "Cats" (channel @catnews). Log in with this one-time link:
              {await stack.login_link('@alice')}
              (valid 5 minutes; a fresh one is printed every 4 minutes)
  Staff       {stack.url}/login/  user "{STAFF_USER}", password "{STAFF_PASSWORD}" (also /admin/)
  API         {stack.url}/api/v1/docs
  Emulator    {stack.emulator.api_url}  (runbot's TELEGRAM_API_URL)
  runbot log  {stack.log_path}

A community is chatting now: newcomers, people leaving and rejoining @catnews,
and a small raid every 45 seconds. Ctrl-C stops everything.
""", flush=True)
        if args.screenshots:
            if not await _wait(stop, 75):
                await take_screenshots(stack, ROOT / "docs" / "screenshots")
        deadline = loop.time() + args.duration if args.duration else None
        while not stop.is_set():
            wait = LINK_EVERY if deadline is None else min(LINK_EVERY, deadline - loop.time())
            if wait <= 0 or await _wait(stop, wait):
                break
            if deadline is None or loop.time() < deadline:
                print(f"Fresh login link for Alice: {await stack.login_link('@alice')}",
                      flush=True)
    finally:
        stop.set()
        if traffic is not None:
            with contextlib.suppress(Exception):
                await traffic
        print("Stopping…")
        await stack.stop()


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Waits up to `seconds`; True when asked to stop."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


if __name__ == "__main__":
    asyncio.run(main(parse()))
