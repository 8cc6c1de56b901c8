"""Attack: log in as staff with a stolen password alone, when the account (or the
deployment) requires a TOTP code; skip the code page by going straight to a page,
the admin or the API."""

# ruff: noqa: F811 (pytest fixtures arrive as arguments named like the imported one)

from __future__ import annotations

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard.tests.conftest import world  # noqa: F401 (the dashboard tests' people)

PASSWORD = "correct horse battery"


def code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"


@pytest.fixture
def staff_device(world) -> TOTPDevice:
    return TOTPDevice.objects.create(user=world.staff, name="phone", confirmed=True)


def password_only(client: Client | None = None) -> Client:
    client = client or Client()
    assert client.post("/login/", {"username": "root", "password": PASSWORD}).status_code == 302
    return client


@pytest.mark.parametrize("path", ["/", "/groups/", "/admin/", "/tokens/"])
def test_a_password_alone_opens_no_page_when_the_account_has_an_authenticator(
        staff_device, path):
    response = password_only().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/2fa/?next=")


def test_a_password_alone_opens_no_api_route(staff_device):
    response = password_only().get("/api/v1/groups")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


def test_a_wrong_code_is_refused_and_the_right_one_opens_the_dashboard(world, staff_device):
    client = password_only()
    wrong = client.post("/login/2fa/", {"otp_token": "000000" if code(staff_device) != "000000"
                                        else "111111"})
    assert wrong.status_code == 200
    assert client.get("/groups/").status_code == 302
    # django-otp makes each wrong code cost a growing delay: guessing codes is slow.
    staff_device.refresh_from_db()
    assert staff_device.throttling_failure_count == 1
    staff_device.throttle_reset()

    right = client.post("/login/2fa/?next=/groups/", {"otp_token": code(staff_device)})
    assert right.status_code == 302 and right["Location"] == "/groups/"
    assert client.get("/groups/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_guessing_codes_is_throttled_even_a_right_one_right_after(world, staff_device):
    client = password_only()
    for guess in ("000001", "000002", "000003"):
        if guess != code(staff_device):
            client.post("/login/2fa/", {"otp_token": guess})
    client.post("/login/2fa/", {"otp_token": code(staff_device)})
    assert client.get("/groups/").status_code == 302


def test_without_the_setting_staff_without_an_authenticator_log_in_with_a_password(world):
    assert password_only().get("/groups/").status_code == 200


def test_when_required_staff_must_enrol_an_authenticator_first(world, settings):
    settings.STAFF_2FA_REQUIRED = True
    client = password_only()
    response = client.get("/groups/")
    assert response["Location"].startswith("/login/2fa/setup/")
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"<svg" in page.content

    device = TOTPDevice.objects.get(user=world.staff, confirmed=False)
    assert client.post("/login/2fa/setup/", {"otp_token": "12345x"}).status_code == 200
    assert client.get("/groups/").status_code == 302
    done = client.post("/login/2fa/setup/?next=/groups/", {"otp_token": code(device)})
    assert done["Location"] == "/groups/"
    assert client.get("/groups/").status_code == 200
    device.refresh_from_db()
    assert device.confirmed

    # The next login asks for a code from that authenticator.
    client.post("/logout/")
    assert password_only().get("/groups/")["Location"].startswith("/login/2fa/?next=")


def test_owners_logging_in_through_telegram_are_not_asked_for_a_code(world, settings):
    settings.STAFF_2FA_REQUIRED = True
    assert world.client(world.alice).get("/groups/").status_code == 200


def test_a_password_alone_cannot_log_the_real_person_out_everywhere(world, staff_device):
    from dashboard.models import ApiToken

    ApiToken.issue(world.staff, "ci")
    attacker = password_only()
    response = attacker.post("/logout/everywhere/", {"revoke_tokens": "on"})
    # It is a page like any other: the code first, and the tokens stay.
    assert response.status_code == 302
    assert response["Location"].startswith("/login/2fa/")
    assert ApiToken.objects.active().filter(user=world.staff).count() == 1


@pytest.mark.django_db(transaction=True)
async def test_a_password_alone_opens_no_live_feed(world, staff_device):
    from asgiref.sync import sync_to_async
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from dashboard.routing import websocket_urlpatterns

    attacker = await sync_to_async(password_only)()
    cookie = attacker.cookies["sessionid"].value
    feed = WebsocketCommunicator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
                                 "/ws/feed/", headers=[(b"cookie", f"sessionid={cookie}".encode()),
                                                       (b"origin", b"http://localhost")])
    connected, _ = await feed.connect()
    # Every group's events would stream to whoever holds the password.
    assert not connected
    await feed.disconnect()
