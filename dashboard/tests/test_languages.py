"""The dashboard in the person's language: the browser's Accept-Language, the
header's switcher (remembered in the cookie, and for a logged-in person on their
account), right-to-left pages, and numbers and dates written as the language does.

The checks read what the language decides whatever the catalogs hold (`<html lang>`,
`dir`, Content-Language, number formats); where a text is compared, the expected
words come from the same catalog under `translation.override`.
"""

from __future__ import annotations

import re

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from analytics.tests.factory import event
from dashboard import language, wording
from dashboard.live import LiveFeed
from dashboard.models import Preferences
from dashboard.routing import websocket_urlpatterns

HTML_TAG = re.compile(r'<html lang="([^"]+)" dir="(ltr|rtl)">')


def html_language(response) -> tuple[str, str]:
    """(lang, dir) of the page's <html> element."""
    match = HTML_TAG.search(response.content.decode())
    assert match, "the page has no <html lang dir>"
    return match.group(1), match.group(2)


def choose(client: Client, code: str, next_url: str = "/groups/"):
    return client.post(reverse("dashboard:set-language"), {"language": code, "next": next_url})


@pytest.mark.django_db
class TestChoosingTheLanguage:
    def test_the_browsers_accept_language_picks_spanish(self, world):
        response = world.client(world.alice).get("/",
                                                 HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9,en;q=0.5")
        assert html_language(response) == ("es", "ltr")
        assert response["Content-Language"] == "es"
        with translation.override("es"):
            overview = gettext("Overview")
        assert f"<h1>{overview}</h1>" in response.content.decode()

    def test_an_unshipped_language_falls_back_to_english(self, world):
        response = world.client(world.alice).get("/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")
        assert html_language(response) == ("en", "ltr")

    def test_the_switcher_overrides_the_browser_and_is_remembered(self, world):
        client = world.client(world.alice)
        response = choose(client, "ru")
        # It goes back to the page it was chosen on, with the cookie set.
        assert response.status_code == 302 and response["Location"] == "/groups/"
        assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"
        again = client.get("/groups/", HTTP_ACCEPT_LANGUAGE="es")
        assert html_language(again) == ("ru", "ltr")
        assert again["Content-Language"] == "ru"

    def test_a_logged_out_visitor_is_remembered_by_the_cookie_alone(self, db):
        client = Client()
        choose(client, "tr", next_url="/login/")
        assert html_language(client.get("/login/", HTTP_ACCEPT_LANGUAGE="es")) == ("tr", "ltr")
        assert not Preferences.objects.exists()

    def test_the_choice_follows_the_person_to_another_device(self, world):
        choose(world.client(world.alice), "ar")
        assert Preferences.objects.get(user=world.alice).language == "ar"
        # Another browser: no cookie, a different Accept-Language; logging in restores it.
        phone = world.client(world.alice)
        response = phone.get("/", HTTP_ACCEPT_LANGUAGE="en-US")
        assert html_language(response) == ("ar", "rtl")
        assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ar"
        # Someone else on that language keeps their own browser's.
        assert html_language(world.client(world.bob).get("/", HTTP_ACCEPT_LANGUAGE="es")) == \
            ("es", "ltr")

    def test_a_later_choice_on_one_device_replaces_the_earlier_one(self, world):
        laptop = world.client(world.alice)
        choose(laptop, "fa")
        choose(laptop, "uk")
        assert html_language(laptop.get("/")) == ("uk", "ltr")
        assert html_language(world.client(world.alice).get("/")) == ("uk", "ltr")

    def test_an_unknown_language_changes_nothing(self, world):
        client = world.client(world.alice)
        choose(client, "ru")
        response = choose(client, "xx-evil")
        assert response.status_code == 302
        assert html_language(client.get("/")) == ("ru", "ltr")
        assert Preferences.objects.get(user=world.alice).language == "ru"

    def test_the_switcher_only_takes_a_post_with_its_token(self, world):
        client = Client(enforce_csrf_checks=True)
        client.force_login(world.alice)
        assert client.get(reverse("dashboard:set-language"), {"language": "ru"}).status_code == 405
        assert choose(client, "ru").status_code == 403
        assert not Preferences.objects.exists()

    @pytest.mark.parametrize("code,direction", [("ar", "rtl"), ("fa", "rtl"), ("hi", "ltr")])
    def test_right_to_left_languages_turn_the_page(self, world, code, direction):
        response = world.client(world.alice).get("/groups/", HTTP_ACCEPT_LANGUAGE=code)
        assert html_language(response) == (code, direction)

    def test_the_header_lists_every_language_by_its_own_name(self, world):
        page = world.client(world.alice).get("/", HTTP_ACCEPT_LANGUAGE="ar").content.decode()
        for code, name in settings.LANGUAGES:
            assert f'<option value="{code}" lang="{code}"' in page
            assert f">{name}</option>" in page
        assert '<option value="ar" lang="ar" selected>' in page

    def test_a_percent_sign_reads_as_one(self, world):
        # Texts with "%" are translated through the catalog, which escapes it as "%%".
        page = world.client(world.alice).get("/analytics/").content.decode()
        assert "Membership cache hit rate (%)" in page and "slowest 5%)" in page
        assert "%%" not in page

    def test_an_htmx_partial_speaks_the_pages_language(self, world):
        response = world.client(world.alice).get(
            "/groups/", {"q": "Cats"}, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="ru")
        assert response["Content-Language"] == "ru"
        assert response.content.decode().lstrip().startswith('<div id="group-table">')


class TestNumbersAndDates:
    @pytest.mark.parametrize("code,big,fraction,axis", [
        ("en", "1,234,567", "7.5", "1.2k"),
        ("ru", "1\xa0234\xa0567", "7,5", "1,2k"),
        ("pt-br", "1.234.567", "7,5", "1,2k"),
        ("tr", "1.234.567", "7,5", "1,2k"),
    ])
    def test_counts_are_written_as_the_language_does(self, code, big, fraction, axis):
        with translation.override(code):
            assert (wording.number(1234567), wording.number(7.5), wording.compact(1200)) == \
                (big, fraction, axis)

    def test_a_chart_tooltip_uses_the_languages_numbers(self):
        from dashboard import charts

        with translation.override("ru"):
            chart = charts.stacked_bars(["09:00"], {"verified": [1200]})
        title = chart["bars"][0]["title"]
        # Russian groups thousands with a no-break space; the words around the number
        # are the translator's to order.
        assert title.startswith("09:00: ") and "1\xa0200" in title, title

    @pytest.mark.django_db
    def test_the_audit_log_dates_follow_the_language(self, world):
        from bots import audit
        from bots.models import AuditLog

        audit.record(audit.AuditAction.API_TOKEN_CREATED, world.cats,
                     by=audit.Actor(AuditLog.Source.DASHBOARD, name="Alice", user=world.alice))
        english = world.client(world.alice).get("/audit/", HTTP_ACCEPT_LANGUAGE="en")
        russian = world.client(world.alice).get("/audit/", HTTP_ACCEPT_LANGUAGE="ru")
        # en: 12/05/2026 …; ru: 05.12.2026 … (settings' SHORT_DATETIME_FORMAT of each).
        assert re.search(r"<time [^>]*>\d\d/\d\d/\d{4} ", english.content.decode())
        assert re.search(r"<time [^>]*>\d\d\.\d\d\.\d{4} ", russian.content.decode())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
class TestLiveFeedLanguage:
    """The websocket renders rows as the page that opened it: cookie, then Accept-Language."""

    app = URLRouter(websocket_urlpatterns)

    async def frame(self, user, headers: list[tuple[bytes, bytes]]) -> str:
        communicator = WebsocketCommunicator(self.app, "/ws/feed/", headers=headers)
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        assert connected
        LiveFeed().forward(event(self.group, "restricted", latency_ms=1234.5, user_name="Eve"))
        try:
            return await communicator.receive_from(timeout=5)
        finally:
            await communicator.disconnect()

    async def test_rows_follow_the_language_cookie(self, world):
        self.group = world.cats
        frame = await self.frame(world.alice, [(b"cookie", b"django_language=ru"),
                                              (b"accept-language", b"en")])
        assert "1234,5" in frame and "1234.5" not in frame

    async def test_rows_follow_accept_language_without_a_cookie(self, world):
        self.group = world.cats
        english = await self.frame(world.alice, [(b"accept-language", b"en-US,en")])
        spanish = await self.frame(world.alice, [(b"accept-language", b"es")])
        assert "1234.5" in english and "1234,5" in spanish


def test_the_socket_language_reads_like_the_pages():
    cookie = {"headers": [(b"cookie", b"a=1; django_language=fa"),
                          (b"accept-language", b"ru")]}
    assert language.for_scope(cookie) == "fa"
    assert language.for_scope({"headers": [(b"accept-language", b"pt-BR,pt;q=0.8")]}) == "pt-br"
    assert language.for_scope({"headers": [(b"cookie", b"django_language=xx"),
                                           (b"accept-language", b"de")]}) == "en"
    assert language.for_scope({"session": {language.SESSION_KEY: "uk"},
                               "headers": [(b"cookie", b"django_language=ru")]}) == "uk"
    # A malformed Cookie header is not an error: Accept-Language decides.
    assert language.for_scope({"headers": [(b"cookie", b'\x00"broken'),
                                           (b"accept-language", b"tr")]}) == "tr"
