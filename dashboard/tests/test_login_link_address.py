"""Login links point at DASHBOARD_URL, or at the address runbot actually serves."""

from __future__ import annotations

import re

import aiohttp

from bots import served
from bots.tests.runtime_support import web_runbot


def test_dashboard_url_wins_then_the_served_address_then_runbots_default(settings):
    try:
        settings.DASHBOARD_URL = ""
        served.forget()
        assert served.dashboard_url() == "http://127.0.0.1:8000"
        # runbot listening on every address: the link names this machine's loopback.
        assert served.announce("0.0.0.0", 8123) == "http://127.0.0.1:8123"  # noqa: S104
        assert served.announce("::1", 8124) == "http://[::1]:8124"
        assert served.dashboard_url() == "http://[::1]:8124"
        settings.DASHBOARD_URL = "https://nezuko.example/"
        assert served.dashboard_url() == "https://nezuko.example"
    finally:
        served.forget()


async def test_runbot_on_another_port_sends_links_to_that_port(scene, tmp_path):
    emu = scene.emulator
    async with web_runbot(scene, tmp_path, DASHBOARD_URL="") as (_runbot, port):
        emu.send_message(scene.bot, scene.carol, "/login")
        call = await emu.wait_for_call("sendMessage", timeout=30, chat_id=scene.carol.id)
        # It should name the port runbot serves, not the default :8000...
        match = re.search(rf"http://127\.0\.0\.1:{port}/login/link/[\w-]+/", call.params["text"])
        assert match, call.params["text"]
        # ...and the link should log Carol in there.
        # unsafe=True: keep the CSRF cookie of a bare IP address (aiohttp drops it otherwise).
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(match.group(0), allow_redirects=False) as page:
                assert page.status == 200
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"',
                                  await page.text())
            data = {"csrfmiddlewaretoken": token.group(1)} if token else {}
            async with http.post(match.group(0), data=data, allow_redirects=False,
                                 headers={"Referer": match.group(0)}) as response:
                assert response.status == 302
