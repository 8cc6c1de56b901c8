"""Attack: guess passwords, or flood the API and the login endpoints, without limit."""

# ruff: noqa: F811 (pytest fixtures arrive as arguments named like the imported one)

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.models import ApiToken
from dashboard.tests.conftest import world  # noqa: F401 (the dashboard tests' people)

STAFF_PASSWORD = "correct horse battery"  # the world fixture's staff account, "root"


def login(client: Client, password: str, username: str = "root", url: str = "/login/"):
    return client.post(url, {"username": username, "password": password})


def test_the_sixth_wrong_password_on_the_staff_login_gets_429_with_retry_after(world):
    client = Client()
    for _ in range(4):
        assert login(client, "wrong").status_code == 200  # the form again, with its error
    # The fifth failure reaches the limit: from then on, 429.
    assert login(client, "wrong").status_code == 429
    sixth = login(client, "wrong")
    assert sixth.status_code == 429
    assert int(sixth["Retry-After"]) == 15 * 60
    # Not even the right password gets in during the cool-down.
    right = login(client, STAFF_PASSWORD)
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_on_the_admin_login_lock_it_out_too(world):
    client = Client()
    codes = [login(client, "wrong", url="/admin/login/").status_code for _ in range(6)]
    assert codes[:4] == [200] * 4 and codes[5] == 429
    assert login(client, STAFF_PASSWORD, url="/admin/login/").status_code == 429


def test_an_account_is_locked_whatever_address_the_guesses_come_from(world):
    for n in range(5):
        login(Client(REMOTE_ADDR=f"198.51.100.{n}"), "wrong")
    fresh_address = Client(REMOTE_ADDR="203.0.113.9")
    assert login(fresh_address, STAFF_PASSWORD).status_code == 429


def test_an_address_is_locked_whatever_accounts_it_guesses(world, django_user_model):
    django_user_model.objects.create_user("other-staff", password="pw-other", is_staff=True)
    client = Client(REMOTE_ADDR="198.51.100.77")
    for n in range(5):
        login(client, "wrong", username=f"guess{n}")
    assert login(client, "pw-other", username="other-staff").status_code == 429
    # Somewhere else, that account still logs in.
    assert login(Client(REMOTE_ADDR="203.0.113.10"), "pw-other",
                 username="other-staff").status_code == 302


def test_a_spoofed_x_forwarded_for_does_not_escape_the_address_lockout(world):
    for n in range(5):
        login(Client(HTTP_X_FORWARDED_FOR=f"10.0.0.{n}"), "wrong", username=f"guess{n}")
    client = Client(HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert login(client, STAFF_PASSWORD).status_code == 429


def test_a_right_password_before_the_limit_logs_in_and_resets_the_count(world):
    client = Client()
    for _ in range(4):
        login(client, "wrong")
    assert login(client, STAFF_PASSWORD).status_code == 302
    client.post(reverse("dashboard:logout"))
    for _ in range(4):
        assert login(client, "wrong").status_code == 200


def test_flooding_the_api_with_one_token_gets_429_with_retry_after(world, settings):
    settings.API_RATE_PER_TOKEN = "5/min"
    _, plaintext = ApiToken.issue(world.alice, "script")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    codes = [client.get("/api/v1/groups").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    answer = client.get("/api/v1/groups")
    assert answer.status_code == 429 and int(answer["Retry-After"]) >= 1
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["status"] == 429
    # Another token of the same person has its own budget.
    _, other = ApiToken.issue(world.alice, "other script")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {other}").get("/api/v1/groups").status_code == 200


def test_flooding_the_api_from_one_address_with_many_tokens_gets_429(world, settings):
    settings.API_RATE_PER_ADDRESS = "4/min"
    codes = []
    for n in range(5):
        _, plaintext = ApiToken.issue(world.alice, f"script {n}")
        codes.append(Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
                     .get("/api/v1/groups").status_code)
    assert codes == [200] * 4 + [429]


def test_guessing_api_tokens_from_one_address_gets_429(world, settings):
    settings.API_RATE_PER_ADDRESS = "3/min"
    codes = [Client(HTTP_AUTHORIZATION=f"Bearer nzk_guess{n}").get("/api/v1/groups").status_code
             for n in range(5)]
    # Wrong tokens are refused, and past the budget refused before any lookup.
    assert codes == [401] * 3 + [429] * 2


@pytest.mark.parametrize("method, path", [
    ("get", "/login/telegram/?id=1&auth_date=1&hash=00"),
    ("post", "/login/link/not-a-real-token/"),
])
def test_hammering_the_one_time_link_and_widget_endpoints_gets_429(world, settings, method,
                                                                     path):
    settings.LOGIN_RATE_PER_ADDRESS = "3/min"
    client = Client()
    codes = [getattr(client, method)(path).status_code for _ in range(4)]
    assert codes == [403] * 3 + [429]
    answer = getattr(client, method)(path)
    assert answer.status_code == 429 and int(answer["Retry-After"]) >= 1
    # Another address is not affected.
    assert getattr(Client(REMOTE_ADDR="203.0.113.20"), method)(path).status_code == 403
