"""Attack: run script through an injected inline <script> or on* handler (the CSP
refuses both), and scrape /metrics without its token."""

# ruff: noqa: F811 (pytest fixtures arrive as arguments named like the imported one)

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from dashboard.tests.conftest import world  # noqa: F401 (the dashboard tests' people)

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PAGES = ["/", "/groups/", "/channels/", "/bots/", "/analytics/", "/audit/", "/tokens/",
         "/logout/everywhere/"]


def directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_forbids_inline_script(world, path):
    response = world.client(world.alice).get(path)
    assert response.status_code == 200
    policy = directives(response)
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == "object-src 'none'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    html = response.content.decode()
    # Every script on the page is a file the policy allows, none inline.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.findall(r"\son[a-z]+\s*=", html) == []


def test_the_login_page_allows_only_telegrams_widget_from_elsewhere(world):
    response = Client().get("/login/")
    policy = directives(response)
    assert policy["script-src"] == "script-src 'self' https://telegram.org"
    assert policy["frame-src"] == "frame-src https://oauth.telegram.org"


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        # A JSON data block (Swagger's settings) is not script: CSP never runs it.
        script = r"<script(?![^>]*\bsrc=)(?![^>]*\btype=\"application/json\")[^>]*>"
        if re.search(script, text) or re.search(r"\son[a-z]+=", text):
            offenders.append(str(template.relative_to(TEMPLATES)))
    assert offenders == []


def test_metrics_without_the_token_is_401_when_a_token_is_set(settings):
    settings.METRICS_TOKEN = "metrics-" + "s" * 24
    assert Client().get("/metrics").status_code == 401
    wrong = Client(HTTP_AUTHORIZATION="Bearer guessed").get("/metrics")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    right = Client(HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}").get("/metrics")
    assert right.status_code == 200
    assert b"django_http_requests" in right.content


def test_metrics_is_open_when_no_token_is_set(settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 200
