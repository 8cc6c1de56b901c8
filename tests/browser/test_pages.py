"""Every page on a phone and on a desktop: no sideways scrolling, no console
errors, labels and reachable actions; the charts move without a reload.

Headless Chromium against runbot and the emulator (see conftest.py), logged in
as Alice, the owner of Cats.
"""

from __future__ import annotations

import asyncio
import re

import pytest
import pytest_asyncio
from playwright.async_api import expect

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
PAGES = ["/", "/groups/", "{group}", "/channels/", "/bots/", "/analytics/", "/audit/",
         "/tokens/", "/api/v1/docs"]

# The login page embeds Telegram's widget script; the test machine has no internet,
# so it gets an empty script instead of a network error in the console.
TELEGRAM = re.compile(r"^https://([a-z]+\.)?telegram\.org/")


class Viewer:
    """A logged-in browser context at one viewport that records console errors."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    async def visit(self, url: str) -> None:
        self.errors.clear()
        await self.page.goto(url)
        await self.page.wait_for_load_state("networkidle")

    async def overflow(self) -> tuple[int, int]:
        return await self.page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]")


async def open_viewer(browser, stack, viewport: dict, **options) -> Viewer:
    context = await browser.new_context(viewport=viewport, **options)
    await context.route(TELEGRAM, lambda route: route.fulfill(
        body="", content_type="application/javascript"))
    page = await context.new_page()
    await page.add_init_script(
        "document.addEventListener('htmx:wsOpen', () => { window.nzWsOpen = true; });")
    viewer = Viewer(page)
    await page.goto(await stack.login_link("@alice"))
    await page.click("#continue")
    await expect(page.locator("h1")).to_have_text("Overview")
    return viewer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def phone(browser, stack):
    viewer = await open_viewer(browser, stack, PHONE, is_mobile=True, has_touch=True)
    yield viewer
    await viewer.page.context.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def desktop(browser, stack):
    viewer = await open_viewer(browser, stack, DESKTOP)
    yield viewer
    await viewer.page.context.close()


def pages(group_url: str) -> list[str]:
    return [group_url if p == "{group}" else p for p in PAGES]


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_no_page_scrolls_sideways_or_logs_an_error(stack, group_url, phone, desktop,
                                                         viewport):
    viewer = phone if viewport == "phone" else desktop
    for path in pages(group_url):
        await viewer.visit(f"{stack.url}{path}")
        width, inner = await viewer.overflow()
        assert width <= inner, f"{path} is {width} px wide in a {inner} px {viewport}"
        assert viewer.errors == [], f"{path} logged {viewer.errors}"
        name = "api-docs" if "docs" in path else (path.strip("/").replace("/", "-") or "overview")
        await screenshot(viewer.page, f"{viewport}-{name}")


async def test_the_login_page_fits_a_phone_without_errors(browser, stack):
    context = await browser.new_context(viewport=PHONE, is_mobile=True)
    await context.route(TELEGRAM, lambda route: route.fulfill(
        body="", content_type="application/javascript"))
    viewer = Viewer(await context.new_page())
    try:
        await viewer.visit(f"{stack.url}/login/")
        width, inner = await viewer.overflow()
        assert width <= inner
        assert viewer.errors == []
        await expect(viewer.page.locator("input[name=username]")).to_be_visible()
    finally:
        await context.close()


LABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby'))
  .map((el) => el.name || el.id || el.outerHTML.slice(0, 60))"""

SMALL_TARGETS = """() => [...document.querySelectorAll(
    'main button, main input:not([type=hidden]), main select, .topbar a, .topbar button')]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => el.getBoundingClientRect().height < 40)
  .map((el) => el.textContent.trim() || el.name || el.outerHTML.slice(0, 60))"""


async def test_every_input_has_a_label_and_every_target_fits_a_thumb(stack, group_url, phone):
    for path in pages(group_url)[:-1]:  # the API docs page is Swagger's own
        await phone.visit(f"{stack.url}{path}")
        assert await phone.page.evaluate(LABELLED) == [], path
        assert await phone.page.evaluate(SMALL_TARGETS) == [], path


async def test_unmute_and_ban_stay_on_screen_on_a_phone(stack, group_url, phone):
    await phone.visit(f"{stack.url}{group_url}")
    inner = await phone.page.evaluate("window.innerWidth")
    member = phone.page.locator(f"#member-{stack.scene.carol.id}")
    for name in ("Unmute", "Ban"):
        box = await member.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= inner, name
    # The settings form comes first; the long list of members after it.
    order = await phone.page.evaluate(
        "document.querySelector('#settings-form').compareDocumentPosition("
        "document.querySelector('#restricted')) & Node.DOCUMENT_POSITION_FOLLOWING")
    assert order


async def test_keyboard_focus_is_visible(stack, desktop):
    await desktop.visit(f"{stack.url}/groups/")
    await desktop.page.keyboard.press("Tab")
    outline = await desktop.page.evaluate(
        "getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")


async def test_dark_mode_follows_the_system(browser, stack):
    viewer = await open_viewer(browser, stack, PHONE, color_scheme="dark", is_mobile=True)
    try:
        background = await viewer.page.evaluate("getComputedStyle(document.body).backgroundColor")
        # Dark: every channel of the page background is low.
        assert all(int(c) < 60 for c in re.findall(r"\d+", background)[:3]), background
        await screenshot(viewer.page, "dark-overview")
    finally:
        await viewer.page.context.close()


async def chart_total(page, selector: str) -> int:
    """What a chart counts (its svg's data-total); 0 while it shows its empty state."""
    value = await page.evaluate(
        f"(() => {{ const svg = document.querySelector({selector!r}); "
        f"return svg ? Number(svg.dataset.total) : 0; }})()")
    return int(value)


async def restrict_strangers(stack, n: int, prefix: str) -> None:
    emu, scene = stack.emulator, stack.scene
    for i in range(n):
        person = emu.create_user(f"{prefix}{i}", username=f"{prefix.lower()}{i}")
        emu.join(scene.group, person)
        emu.send_message(scene.group, person, "hi")
    await emu.wait_for_call("restrictChatMember", timeout=30, user_id=person.id)


async def wait_for_growth(page, selector: str, before: int, within: float) -> int:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        now = await chart_total(page, selector)
        if now > before:
            return now
        await asyncio.sleep(0.5)
    return await chart_total(page, selector)


async def test_the_overview_chart_moves_with_new_events_without_a_reload(stack, group_url,
                                                                         desktop):
    page = desktop.page
    await desktop.visit(f"{stack.url}/")
    await page.wait_for_function("() => window.nzWsOpen === true")
    await page.evaluate("window.nzSamePage = true")
    before = await chart_total(page, "#last-hour svg")

    await restrict_strangers(stack, 3, "Raider")

    after = await wait_for_growth(page, "#last-hour svg", before, within=60)
    assert after >= before + 3
    assert await page.evaluate("window.nzSamePage") is True
    await expect(page.locator("#last-hour svg rect title").first).to_contain_text("restricted")
    assert desktop.errors == []


async def test_the_analytics_charts_move_with_new_events_without_a_reload(stack, group_url,
                                                                          desktop):
    page = desktop.page
    await desktop.visit(f"{stack.url}/analytics/")
    # Young data: the default period is the last hour, per minute.
    await expect(page.locator("select[name=period]")).to_have_value("1h")
    await page.evaluate("window.nzSamePage = true")
    first_chart = "#charts svg.svg-chart"
    before = await chart_total(page, first_chart)

    await restrict_strangers(stack, 2, "Visitor")

    assert await wait_for_growth(page, first_chart, before, within=60) >= before + 2
    assert await page.evaluate("window.nzSamePage") is True
    assert desktop.errors == []


async def test_the_live_feed_keeps_the_newest_hundred_rows(stack, desktop):
    page = desktop.page
    await desktop.visit(f"{stack.url}/")
    # 150 rows arrive at once, as during a raid: the oldest go.
    await page.evaluate("""() => {
      const body = document.querySelector('#feed-rows');
      const rows = Array.from({length: 150}, (_, i) =>
        `<tr class="feed-row"><td>raid ${i}</td></tr>`).join('');
      body.insertAdjacentHTML('afterbegin', rows);
    }""")
    await expect(page.locator("#feed-rows tr")).to_have_count(100)
    await expect(page.locator("#feed-rows tr").first).to_contain_text("raid 0")
