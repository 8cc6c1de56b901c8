"""Logging in: the Telegram widget check, one-time links, staff, logout everywhere."""

import io
import logging
import time
from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.tests.factory import make_bot
from bots.models import BotInstance
from dashboard import auth
from dashboard.models import LoginLink, TelegramAccount

from .conftest import ALICE_TG


def signed(world, **fields) -> dict:
    data = {"id": str(ALICE_TG), "first_name": "Alice", "username": "alice",
            "auth_date": str(int(time.time()))} | fields
    data["hash"] = auth.widget_hash(data, world.cats.bot.token)
    return data


CALLBACK = reverse("dashboard:login-telegram")


@pytest.fixture
def log_output():
    """What the configured root handler would write, formatted and filtered alike."""
    (console,) = logging.getLogger().handlers[:1]
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(console.formatter)
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    logging.getLogger().addHandler(handler)
    yield handler.stream
    logging.getLogger().removeHandler(handler)


class TestTelegramWidget:
    def test_a_valid_login_links_the_account_and_opens_the_overview(self, world):
        client = Client()
        response = client.get(CALLBACK, signed(world))
        assert response.status_code == 302 and response["Location"] == "/"
        # It should be Alice's existing account, and she sees Cats.
        assert client.get("/").context["user"] == world.alice
        assert "Cats" in client.get(reverse("dashboard:groups")).content.decode()

    def test_a_first_login_creates_a_user(self, world):
        client = Client()
        client.get(CALLBACK, signed(world, id="5555", username="newbie"))
        account = TelegramAccount.objects.get(telegram_id=5555)
        assert account.username == "newbie" and account.user.has_usable_password() is False

    def test_a_leftover_user_with_the_same_name_is_not_taken_over(self, world, django_user_model):
        leftover = django_user_model.objects.create_user("tg5556", password="pw", is_staff=True)
        client = Client()
        response = client.get(CALLBACK, signed(world, id="5556", username="newbie"))
        assert response.status_code == 302
        # A new account of its own, never the staff user that happened to have the name.
        account = TelegramAccount.objects.get(telegram_id=5556)
        assert account.user != leftover and account.user.username == "tg5556-2"
        assert not account.user.is_staff

    def test_a_forged_hash_is_refused(self, world):
        data = signed(world)
        data["id"] = str(world.charlie.telegram.telegram_id)  # tampered after signing
        response = Client().get(CALLBACK, data)
        assert response.status_code == 403
        assert "not signed by our bot" in response.content.decode()

    def test_a_payload_signed_with_another_token_is_refused(self, world):
        data = {"id": str(ALICE_TG), "auth_date": str(int(time.time()))}
        data["hash"] = auth.widget_hash(data, "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        assert Client().get(CALLBACK, data).status_code == 403

    def test_a_stale_login_is_refused(self, world, settings):
        settings.TELEGRAM_LOGIN_MAX_AGE = 3600
        data = signed(world, auth_date=str(int(time.time()) - 3601))
        response = Client().get(CALLBACK, data)
        assert response.status_code == 403
        assert "expired" in response.content.decode()

    def test_a_replayed_login_is_refused(self, world):
        data = signed(world)
        assert Client().get(CALLBACK, data).status_code == 302
        response = Client().get(CALLBACK, data)
        assert response.status_code == 403
        assert "already used" in response.content.decode()

    def test_every_received_field_is_signed_as_telegram_specifies(self, world):
        # A field Telegram signs that Nezuko does not read still counts in the check.
        assert Client().get(CALLBACK, signed(world, allows_write_to_pm="true")).status_code == 302
        # A field added after signing is refused, not silently dropped.
        data = signed(world) | {"is_admin": "1"}
        assert Client().get(CALLBACK, data).status_code == 403

    def test_incomplete_or_junk_data_is_refused_without_a_500(self, world):
        assert Client().get(CALLBACK, {"id": "x"}).status_code == 403
        data = signed(world, auth_date="not-a-number")
        assert Client().get(CALLBACK, data).status_code == 403


class TestLoginLink:
    def link(self) -> str:
        token = auth.create_login_link(auth.TelegramIdentity(ALICE_TG, username="alice"))
        return reverse("dashboard:login-link", args=[token])

    def test_get_only_shows_a_button_so_link_previews_do_not_use_it(self, world):
        path = self.link()
        assert Client().get(path).status_code == 200
        assert LoginLink.objects.get().used_at is None

    def test_it_logs_in_once(self, world):
        path = self.link()
        client = Client()
        assert client.post(path).status_code == 302
        assert client.get("/").context["user"] == world.alice
        # A second use is refused.
        response = Client().post(path)
        assert response.status_code == 403
        assert "already used" in response.content.decode()

    def test_it_expires_after_five_minutes(self, world):
        path = self.link()
        with time_machine.travel(timezone.now() + timedelta(minutes=5, seconds=1)):
            assert Client().post(path).status_code == 403

    def test_its_token_stays_out_of_the_logs(self, world, log_output):
        path = self.link()
        token = path.rstrip("/").rsplit("/", 1)[1]
        # A browser without the CSRF cookie is refused, and Django logs the path.
        assert Client(enforce_csrf_checks=True).post(path).status_code == 403
        assert "/login/link/" in log_output.getvalue()
        assert token not in log_output.getvalue()
        # The link still works for its owner.
        assert Client().post(path).status_code == 302

    def test_a_made_up_token_is_refused(self, world):
        assert Client().post(reverse("dashboard:login-link", args=["nope"])).status_code == 403


class TestStaffAndLogout:
    def test_staff_log_in_with_a_password(self, world):
        client = Client()
        response = client.post(reverse("dashboard:login"),
                               {"username": "root", "password": "correct horse battery"})
        assert response.status_code == 302
        assert "Dogs" in client.get(reverse("dashboard:groups")).content.decode()

    def test_a_wrong_password_shows_the_form_again(self, world):
        response = Client().post(reverse("dashboard:login"),
                                 {"username": "root", "password": "nope"})
        assert response.status_code == 200
        assert "enter a correct username and password" in response.content.decode()

    def test_logout_everywhere_ends_every_session(self, world):
        phone, laptop = Client(), Client()
        for client in (phone, laptop):
            client.post(reverse("dashboard:login"),
                        {"username": "root", "password": "correct horse battery"})
        assert Session.objects.count() == 2

        phone.post(reverse("dashboard:logout-everywhere"))

        # The laptop is logged out too.
        assert laptop.get("/").status_code == 302
        assert Session.objects.count() == 0

    def test_a_next_url_to_another_site_is_ignored(self, world):
        response = Client().post(reverse("dashboard:login"), {
            "username": "root", "password": "correct horse battery", "next": "https://evil.example/",
        })
        assert response["Location"] == "/"


@pytest.mark.parametrize("max_age", [60])
def test_verify_widget_uses_the_configured_window(world, max_age):
    data = signed(world, auth_date=str(int(time.time()) - 120))
    with pytest.raises(auth.LoginRefused):
        auth.verify_widget(data, [world.cats.bot.token], max_age=max_age)


def test_a_bot_an_owner_added_cannot_sign_logins_for_other_people(world):
    # Charlie added his own bot on the dashboard, so he knows its token.
    charlies_bot = make_bot(username="charlies_bot", owner=world.charlie)
    data = {"id": str(ALICE_TG), "auth_date": str(int(time.time()))}
    data["hash"] = auth.widget_hash(data, charlies_bot.token)

    client = Client()
    response = client.get(CALLBACK, data)

    # It should refuse the signature instead of logging Charlie in as Alice.
    assert response.status_code == 403
    assert "not signed by our bot" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The login page offers only a bot that staff registered, even when it is the only one.
    BotInstance.objects.exclude(pk=charlies_bot.pk).update(is_active=False)
    page = Client().get(reverse("dashboard:login")).content.decode()
    assert "charlies_bot" not in page
