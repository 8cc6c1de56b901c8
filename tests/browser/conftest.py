"""Browser tests: Debian's chromium, driven by Playwright, against the real stack.

`scripts/install-chromium.sh` installs the browser (CI runs it); Playwright
never downloads one. Each test saves a screenshot under test-output/browser/.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bots.emulator import localstack

CHROMIUM, CHROMIUM_ARGS = localstack.CHROMIUM, localstack.CHROMIUM_ARGS
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "browser"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(reason="chromium missing: run scripts/install-chromium.sh")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[localstack.Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="nezuko-browser-"))
    running = await localstack.start(workdir)
    try:
        yield running
    finally:
        await running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page(browser, stack):
    """One logged-out page for the module; tests log in as they need."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    # Lets a test wait for the live feed's websocket instead of guessing.
    await page.add_init_script(
        "document.addEventListener('htmx:wsOpen', () => { window.nzWsOpen = true; });"
    )
    try:
        yield page
    finally:
        await context.close()


async def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def group_url(stack) -> str:
    """Cats' page, after Carol was restricted there (so its member list has a row, with actions)."""
    emu, scene = stack.emulator, stack.scene
    emu.join(scene.group, scene.carol)
    emu.send_message(scene.group, scene.carol, "hello")
    await emu.wait_for_call("restrictChatMember", timeout=20, user_id=scene.carol.id)
    out = await stack.manage("shell", "-c",
                             "from groups.models import ProtectedGroup as G; "
                             "print(G.objects.get(title='Cats').pk)")
    return f"/groups/{out.strip().splitlines()[-1]}/"
