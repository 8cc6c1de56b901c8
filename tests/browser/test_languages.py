"""The dashboard in other languages, in a real browser: Arabic turns every page
right-to-left and still fits a phone; Russian counts use their three plural forms;
the header's switcher changes the language and keeps it.

Headless Chromium against runbot and the emulator (see conftest.py), logged in
as Alice, the owner of Cats. The expected Russian words come from the catalogs
(`ngettext` under `translation.override`), and the test checks they are Russian
plural forms and not English, so it fails until the catalogs hold them.
"""

from __future__ import annotations

import re

import pytest
from django.utils import translation
from django.utils.translation import ngettext
from playwright.async_api import expect

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"width": 390, "height": 844}
# The login page embeds Telegram's widget script; the test machine has no internet.
TELEGRAM = re.compile(r"^https://([a-z]+\.)?telegram\.org/")

DIRECTION = "[document.documentElement.lang, document.documentElement.dir]"
OVERFLOW = "[document.scrollingElement.scrollWidth, window.innerWidth]"

# What /logout/everywhere/ offers: the template's blocktranslate, as the catalog has it.
REVOKE_ONE = "Also revoke my %(counter)s API token: scripts using it stop working."
REVOKE_MANY = "Also revoke my %(counter)s API tokens: scripts using them stop working."


def revoke_offer(count: int, language: str) -> str:
    with translation.override(language):
        return ngettext(REVOKE_ONE, REVOKE_MANY, count) % {"counter": count}


async def logged_in(browser, stack, locale: str, viewport: dict | None = None):
    """A new browser context whose Accept-Language is `locale`, logged in as Alice."""
    context = await browser.new_context(viewport=viewport or PHONE, locale=locale,
                                        is_mobile=True, has_touch=True)
    await context.route(TELEGRAM, lambda route: route.fulfill(
        body="", content_type="application/javascript"))
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    await page.goto(await stack.login_link("@alice"))
    await page.click("#continue")
    await page.wait_for_url(f"{stack.url}/")
    return page


async def test_arabic_pages_are_right_to_left_and_fit_a_phone(browser, stack, group_url):
    page = await logged_in(browser, stack, "ar")
    try:
        for path in ["/", "/groups/", group_url, "/analytics/"]:
            page.errors.clear()
            await page.goto(f"{stack.url}{path}")
            await page.wait_for_load_state("networkidle")
            assert await page.evaluate(DIRECTION) == ["ar", "rtl"], path
            width, inner = await page.evaluate(OVERFLOW)
            assert width <= inner, f"{path} is {width} px wide in Arabic on a {inner} px phone"
            assert page.errors == [], f"{path} logged {page.errors}"
            # Mirrored: the navigation starts at the right edge.
            brand = await page.locator(".brand").bounding_box()
            assert brand["x"] + brand["width"] > inner / 2, f"{path}: the brand sits on the left"
            name = path.strip("/").replace("/", "-") or "overview"
            await screenshot(page, f"arabic-phone-{name}")
    finally:
        await page.context.close()


async def test_russian_counts_use_the_three_plural_forms(browser, stack):
    page = await logged_in(browser, stack, "ru-RU")
    offers = {}
    try:
        assert await page.evaluate(DIRECTION) == ["ru", "ltr"]
        made = 0
        for count in (1, 3, 5):
            await page.goto(f"{stack.url}/tokens/")
            while made < count:
                made += 1
                await page.fill("#token-section input[name=name]", f"script {made}")
                await page.click("#token-section form button[type=submit]")
                # htmx swaps the section: wait for the new row before the next one.
                await expect(page.locator("#token-section tbody tr td code")).to_have_count(made)
            await page.goto(f"{stack.url}/logout/everywhere/")
            offers[count] = " ".join((await page.locator("main label").inner_text()).split())
            await screenshot(page, f"russian-revoke-{count}")
    finally:
        await page.context.close()

    for count, shown in offers.items():
        assert shown == revoke_offer(count, "ru"), f"{count}: the page shows {shown!r}"
    # One, few, many: three different forms, none of them the English one.
    forms = {revoke_offer(n, "ru").replace(str(n), "N") for n in (1, 3, 5)}
    assert len(forms) == 3, f"Russian plural forms missing from the catalog: {forms}"
    assert revoke_offer(1, "ru") != revoke_offer(1, "en")


async def test_the_switcher_changes_the_language_and_keeps_it(browser, stack):
    page = await logged_in(browser, stack, "en-US")
    try:
        await page.goto(f"{stack.url}/groups/")
        assert await page.evaluate(DIRECTION) == ["en", "ltr"]
        await page.select_option(".topbar select[name=language]", "fa")
        # The choice applies at once (no button press) and stays on the same page.
        await page.wait_for_function("document.documentElement.lang === 'fa'")
        assert page.url == f"{stack.url}/groups/"
        assert await page.evaluate(DIRECTION) == ["fa", "rtl"]
        await page.goto(f"{stack.url}/analytics/")
        assert await page.evaluate(DIRECTION) == ["fa", "rtl"]
        assert page.errors == []
    finally:
        await page.context.close()
