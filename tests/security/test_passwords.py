"""Attack: crack stolen password hashes (Argon2id, not PBKDF2), and keep using an
API token after its owner logged out everywhere."""

# ruff: noqa: F811 (pytest fixtures arrive as arguments named like the imported one)

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.test import Client

from dashboard.models import ApiToken
from dashboard.tests.conftest import world  # noqa: F401 (the dashboard tests' people)


def test_new_passwords_are_hashed_with_argon2id(db):
    user = User.objects.create_user("newstaff", password="a long passphrase", is_staff=True)
    assert user.password.startswith("argon2$argon2id$")


def test_a_pbkdf2_hash_is_upgraded_to_argon2id_at_the_next_login(db):
    user = User.objects.create(username="oldstaff", is_staff=True,
                               password=make_password("old passphrase", hasher="pbkdf2_sha256"))
    assert user.password.startswith("pbkdf2_sha256$")
    response = Client().post("/login/", {"username": "oldstaff", "password": "old passphrase"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password("old passphrase")


def test_log_out_everywhere_asks_about_api_tokens_and_revokes_them_when_told(world):
    _, plaintext = ApiToken.issue(world.alice, "script")
    script = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert script.get("/api/v1/groups").status_code == 200
    browser = world.client(world.alice)
    page = browser.get("/logout/everywhere/").content.decode()
    assert 'name="revoke_tokens"' in page and "1 API token" in page

    browser.post("/logout/everywhere/", {"revoke_tokens": "on"})

    assert script.get("/api/v1/groups").status_code == 401
    assert browser.get("/").status_code == 302


def test_log_out_everywhere_keeps_tokens_when_not_asked_to(world):
    _, plaintext = ApiToken.issue(world.alice, "script")
    world.client(world.alice).post("/logout/everywhere/")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}").get("/api/v1/groups").status_code \
        == 200
