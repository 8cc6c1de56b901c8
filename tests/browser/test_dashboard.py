"""An owner logs in, watches the live feed, changes a setting runbot applies, and
reads the charts: in headless Chromium, against runbot and the emulator."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_it_logs_in_with_a_one_time_link_and_shows_the_overview(stack, page):
    await page.goto(await stack.login_link("@alice"))
    await page.click("#continue")

    # Alice lands on her overview: one protected group, one channel, the feed.
    await expect(page.locator("h1")).to_have_text("Overview")
    await expect(page.locator("#groups-protected")).to_have_text("1")
    await expect(page.locator("#channels-count")).to_have_text("1")
    await screenshot(page, "overview")


async def test_a_verification_appears_in_the_live_feed_without_a_reload(stack, page):
    await page.goto(f"{stack.url}/")
    await page.wait_for_function("() => window.nzWsOpen === true")
    await page.evaluate("window.nzSamePage = true")
    emu, scene = stack.emulator, stack.scene

    # Carol joins and speaks without following @catnews: the engine restricts her.
    emu.join(scene.group, scene.carol)
    emu.send_message(scene.group, scene.carol, "hi all")
    await emu.wait_for_call("restrictChatMember", timeout=15, user_id=scene.carol.id)

    # Her row arrives over the websocket, and the page was never reloaded.
    row = page.locator("#feed-rows tr.feed-row", has_text="Carol")
    await expect(row.first).to_be_visible(timeout=10_000)
    await expect(row.first).to_contain_text("Restricted")
    assert await page.evaluate("window.nzSamePage") is True
    await expect(page.locator("#restricted-now")).not_to_have_text("0")
    await screenshot(page, "live-feed")


async def test_the_group_table_searches_without_a_reload(stack, page):
    await page.goto(f"{stack.url}/groups/")
    await page.evaluate("window.nzSamePage = true")
    await page.fill("input[name=q]", "zebra")
    await expect(page.locator("#group-table")).to_contain_text("No groups match")
    await expect(page).to_have_url(re.compile(r"q=zebra"))
    await page.fill("input[name=q]", "cat")
    await expect(page.locator("#group-table")).to_contain_text("Cats")
    assert await page.evaluate("window.nzSamePage") is True


async def test_unmute_on_the_group_page_is_carried_out_by_runbot(stack, page):
    emu, scene = stack.emulator, stack.scene
    await page.goto(f"{stack.url}/groups/")
    await page.click("text=Cats")
    cell = page.locator(f"#member-{scene.carol.id}")
    since = len(emu.calls)
    await cell.locator("text=Unmute").click()

    # The command is queued, runbot lifts the restriction, the row shows the result.
    await emu.wait_for_call("restrictChatMember", timeout=20, since=since, user_id=scene.carol.id)
    await expect(cell).to_contain_text("done", timeout=20_000)
    await screenshot(page, "unmute")


async def test_a_setting_changed_on_the_dashboard_applies_in_runbot(stack, page):
    emu, scene = stack.emulator, stack.scene
    await page.goto(f"{stack.url}/groups/")
    await page.click("text=Cats")
    await page.select_option("#id_action", "kick")
    await page.click("text=Save settings")
    await expect(page.locator("#settings-form")).to_contain_text("Saved.")
    await expect(page.locator("#id_action")).to_have_value("kick")
    await screenshot(page, "group-settings")

    # The next stranger is removed instead of muted: runbot applied it without a restart.
    dave = emu.create_user("Dave", username="dave")
    emu.join(scene.group, dave)
    emu.send_message(scene.group, dave, "hello?")
    await emu.wait_for_call("banChatMember", timeout=20, user_id=dave.id)
    assert not emu.calls_named("restrictChatMember", user_id=dave.id)


async def test_analytics_draws_the_charts(stack, page):
    # Rollups are flushed by runbot about a second after the events; poll the page
    # a bounded number of times, as a person pressing reload would.
    bars = page.locator("#charts svg.svg-chart rect")
    for _ in range(30):
        await page.goto(f"{stack.url}/analytics/?period=24h&granularity=hour")
        if await bars.count() > 0:
            break
        await asyncio.sleep(0.5)
    await expect(bars.first).to_be_visible()
    await expect(page.locator("figcaption", has_text="Verifications over time")).to_be_visible()
    # Changing the period swaps the charts in place through htmx.
    await page.select_option("select[name=period]", "7d")
    await expect(page).to_have_url(re.compile(r"period=7d"))
    await expect(bars.first).to_be_visible()
    await screenshot(page, "analytics")
