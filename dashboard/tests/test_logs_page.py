"""The staff logs page: runbot's last lines, filterable, for staff only, secrets scrubbed."""

from __future__ import annotations

import logging

import pytest
import structlog
from django.urls import reverse

from dashboard.logring import ring

TOKEN = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
FERNET_KEY = "q1Yy0pXQhZ8mW2bN3vT5rL7kJ9fD4sA6gH8jK0lZ1xC="
LOGIN_LINK = "/login/link/Zr4kP9qT2wX7mN1bV6cY3hJ8/"

logger = structlog.get_logger("nezuko.tests.logs_page")


@pytest.fixture(autouse=True)
def empty_ring():
    # The test settings log at WARNING; runbot logs at INFO.
    test_logger = logging.getLogger("nezuko.tests.logs_page")
    test_logger.setLevel(logging.DEBUG)
    ring.clear()
    yield
    ring.clear()
    test_logger.setLevel(logging.NOTSET)


def url(**params) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return reverse("dashboard:logs") + (f"?{query}" if query else "")


class TestWhoSeesIt:
    def test_it_shows_staff_the_lines_runbot_logged(self, world):
        logger.info("bot.running", bot=1, username="nezuko_bot", mode="polling")
        response = world.client(world.staff).get(url())
        html = response.content.decode()
        assert response.status_code == 200
        # It should show the line, its bot and its fields.
        assert "bot.running" in html and "@nezuko_bot" in html and "mode=polling" in html

    @pytest.mark.parametrize("persona", ["alice", "bob", "charlie", "dave"])
    def test_it_returns_404_to_owners_and_admins(self, world, persona):
        logger.info("bot.running", bot=1, username="nezuko_bot")
        response = world.client(getattr(world, persona)).get(url())
        assert response.status_code == 404
        assert b"bot.running" not in response.content

    def test_it_sends_anonymous_visitors_to_the_login_page(self, client, world):
        response = client.get(url())
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("dashboard:login"))

    def test_the_menu_links_it_for_staff_only(self, world):
        link = f'href="{reverse("dashboard:logs")}"'
        assert link in world.client(world.staff).get(reverse("dashboard:overview")).content.decode()
        assert link not in world.client(world.alice).get(
            reverse("dashboard:overview")).content.decode()


class TestFilters:
    def test_it_filters_by_level(self, world):
        logger.info("update.handled", bot=1, username="nezuko_bot")
        logger.error("bot.crashed", bot=1, username="nezuko_bot")
        html = world.client(world.staff).get(url(level="error")).content.decode()
        # It should show errors and nothing below.
        assert "bot.crashed" in html and "update.handled" not in html

    def test_it_filters_by_bot(self, world):
        logger.warning("bot.network_error", bot=1, username="nezuko_bot")
        logger.warning("bot.network_error_elsewhere", bot=2, username="dogs_bot")
        logger.warning("supervisor.locks_lost")
        html = world.client(world.staff).get(url(bot="dogs_bot")).content.decode()
        assert "bot.network_error_elsewhere" in html
        assert "supervisor.locks_lost" not in html
        assert ">bot.network_error<" not in html
        # It should offer every bot it has lines about.
        assert '<option value="nezuko_bot"' in html and '<option value="dogs_bot" selected' in html

    def test_an_unknown_filter_falls_back_to_everything_at_info(self, world):
        logger.info("update.handled", bot=1, username="nezuko_bot")
        response = world.client(world.staff).get(url(level="bogus", bot="nobody"))
        assert response.status_code == 200
        assert "update.handled" in response.content.decode()

    def test_an_htmx_poll_gets_only_the_table(self, world):
        logger.info("bot.running", bot=1, username="nezuko_bot")
        response = world.client(world.staff).get(url(level="info"), HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert response.status_code == 200
        assert html.lstrip().startswith('<div id="log-table"')
        assert "bot.running" in html and "<h1>" not in html
        # It should keep polling with the same filters.
        assert 'hx-trigger="every 5s"' in html and "level=info" in html

    def test_it_shows_newest_first(self, world):
        logger.info("first.line")
        logger.info("second.line")
        html = world.client(world.staff).get(url()).content.decode()
        assert html.index("second.line") < html.index("first.line")


class TestSecrets:
    def test_token_shaped_strings_never_reach_the_page(self, world):
        # Everywhere a secret could slip in: the event, a field, a library's message,
        # an exception's text and traceback.
        logger.warning(f"telegram.refused {TOKEN}", bot=1, username="nezuko_bot",
                       url=f"https://api.telegram.org/bot{TOKEN}/getMe",
                       key=FERNET_KEY, link=f"https://nezuko.example{LOGIN_LINK}",
                       headers={"Authorization": "Bearer s3cr3tAPItokenVALUE1234567890abcdef"})
        logging.getLogger("httpx").warning("HTTP Request: POST https://api.telegram.org/bot%s/x",
                                           TOKEN)
        try:
            raise RuntimeError(f"connect to https://api.telegram.org/bot{TOKEN}/getUpdates")
        except RuntimeError:
            logger.exception("bot.crashed", bot=1, username="nezuko_bot")
        html = world.client(world.staff).get(url(level="debug")).content.decode()
        assert "bot.crashed" in html and "telegram.refused" in html
        # It should show none of the secrets, only their placeholders.
        for secret in (TOKEN, TOKEN.split(":")[1], FERNET_KEY, "Zr4kP9qT2wX7mN1bV6cY3hJ8",
                       "s3cr3tAPItokenVALUE1234567890abcdef"):
            assert secret not in html
        assert "&lt;token&gt;" in html
        assert "traceback" in html


class TestTheRing:
    def test_it_keeps_only_the_newest_lines(self, world, settings):
        capacity = ring.capacity
        try:
            ring.resize(3)
            for n in range(5):
                logger.info(f"line.{n}")
            events = [entry.event for entry in ring.recent()]
            assert events == ["line.4", "line.3", "line.2"]
        finally:
            ring.resize(capacity)
