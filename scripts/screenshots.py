"""Screenshots of the main dashboard pages for the README: desktop, phone, dark.

Runs the demo world (the Bot API emulator, runbot and the simulated community
of `make demo`) in a temporary directory, lets the community play for a while
so the charts and the feed have something to show, then logs in as Alice (the
owner of "Cats") in Debian's chromium and saves docs/screenshots/<look>-<page>.png.
Nothing reaches Telegram.

    .venv/bin/python scripts/screenshots.py [--warmup SECONDS] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nezuko.settings")
os.environ.setdefault("DEBUG", "true")
os.environ["NEZUKO_READ_DOTENV"] = "false"
os.environ.setdefault("LOG_LEVEL", "WARNING")

# (name, viewport, colour scheme, phone?)
LOOKS = [
    ("desktop", {"width": 1440, "height": 900}, "light", False),
    ("phone", {"width": 390, "height": 844}, "light", True),
    ("dark", {"width": 390, "height": 844}, "dark", True),
]
PAGES = ["overview", "analytics", "group", "bots"]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=60,
                        help="seconds of community traffic before the first picture")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    return parser.parse_args()


def demo_world():
    """The launcher and the community, wherever this checkout keeps them."""
    try:
        from bots.emulator import localstack
        from bots.emulator.community import Community
    except ImportError:  # before the demo moved beside the emulator
        from dashboard import localstack
        from dashboard.community import Community
    return localstack, Community


async def shoot(stack, localstack, out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    group_pk = (await stack.manage(
        "shell", "-c", "from groups.models import ProtectedGroup as G; "
        "print(G.objects.get(title='Cats').pk)")).strip().splitlines()[-1]
    paths = {"overview": "/", "analytics": "/analytics/", "group": f"/groups/{group_pk}/",
             "bots": "/bots/"}
    saved = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=localstack.CHROMIUM,
                                                   args=localstack.CHROMIUM_ARGS)
        for look, viewport, scheme, phone in LOOKS:
            context = await browser.new_context(viewport=viewport, color_scheme=scheme,
                                                is_mobile=phone, has_touch=phone)
            page = await context.new_page()
            await page.goto(await stack.login_link("@alice"))
            await page.click("#continue")
            await page.wait_for_selector("#feed-rows tr.feed-row")
            for name in PAGES:
                await page.goto(f"{stack.url}{paths[name]}")
                await page.wait_for_load_state("networkidle")
                path = out / f"{look}-{name}.png"
                # The top two screens: the figures, charts and first rows, not every row.
                height = min(await page.evaluate("document.body.scrollHeight"),
                             2 * viewport["height"])
                await page.screenshot(path=str(path), full_page=True, clip={
                    "x": 0, "y": 0, "width": viewport["width"], "height": height})
                saved.append(path)
            await context.close()
        await browser.close()
    return saved


async def main(args: argparse.Namespace) -> None:
    import django

    django.setup()
    localstack, community_class = demo_world()
    workdir = Path(tempfile.mkdtemp(prefix="nezuko-screenshots-"))
    stop = asyncio.Event()
    traffic: asyncio.Task | None = None
    stack = await localstack.start(workdir)
    try:
        traffic = asyncio.create_task(community_class(stack.scene).play(stop))
        print(f"The community plays for {args.warmup:.0f} s…", flush=True)
        await asyncio.sleep(args.warmup)
        await asyncio.to_thread(args.out.mkdir, parents=True, exist_ok=True)
        for path in await shoot(stack, localstack, args.out):
            print(f"Saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    finally:
        stop.set()
        if traffic is not None:
            with contextlib.suppress(Exception):
                await traffic
        await stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(parse()))
