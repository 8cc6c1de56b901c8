"""Attack: feed the API input it does not expect (NUL characters, bodies that are not
objects) to get a 500, a database error or an empty write; read the error shapes."""

# ruff: noqa: F811 (pytest fixtures arrive as arguments named like the imported one)

from __future__ import annotations

import json

import pytest
from django.test import Client

from bots.models import AuditLog
from dashboard.models import ApiToken
from dashboard.tests.conftest import world  # noqa: F401 (the dashboard tests' people)

API = "/api/v1"
PROBLEM = "application/problem+json"


@pytest.fixture
def alice_api(world) -> Client:
    _, plaintext = ApiToken.issue(world.alice, "script")
    return Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


@pytest.mark.parametrize("query", ["q=a%00b", "status=enabled%00", "q%00=x", "limit=1%00"])
def test_a_nul_character_in_a_query_string_is_a_422_not_a_500(alice_api, query):
    body = assert_problem(alice_api.get(f"{API}/groups?{query}"), 422)
    assert "Null characters" in body["errors"][0]["message"]


@pytest.mark.parametrize("raw", ["null", "[]", "1", '"text"', "true", "[{}]"])
def test_a_body_that_is_not_a_json_object_is_a_422_and_writes_nothing(world, alice_api, raw):
    before = AuditLog.objects.count()
    response = alice_api.patch(f"{API}/groups/{world.cats.pk}/settings", raw,
                               content_type="application/json")
    body = assert_problem(response, 422)
    assert body["errors"] == [{"field": "request", "message": body["errors"][0]["message"]}]
    assert "JSON object" in body["errors"][0]["message"]
    assert AuditLog.objects.count() == before


def test_a_nul_character_inside_a_json_body_is_a_422_naming_the_field(world, alice_api):
    before = AuditLog.objects.count()
    response = alice_api.patch(f"{API}/groups/{world.cats.pk}/settings",
                               json.dumps({"warning_text": "hi\x00there"}),
                               content_type="application/json")
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "warning_text"
    assert AuditLog.objects.count() == before


def test_a_body_that_is_not_json_is_a_422(world, alice_api):
    response = alice_api.patch(f"{API}/groups/{world.cats.pk}/settings", "{not json",
                               content_type="application/json")
    assert_problem(response, 422)


def test_validation_errors_are_rfc_9457_problems_with_per_field_errors(world, alice_api):
    response = alice_api.patch(f"{API}/groups/{world.cats.pk}/settings",
                               json.dumps({"warning_delete_after": -5}),
                               content_type="application/json")
    body = assert_problem(response, 422)
    assert body["type"].startswith("tag:nezuko")
    assert body["title"] == "Invalid input"
    assert [e["field"] for e in body["errors"]] == ["warning_delete_after"]


@pytest.mark.parametrize("client_kind, path, status", [
    ("anonymous", "/groups", 401),
    ("alice", "/groups/999999", 404),
])
def test_other_errors_are_problems_too(world, alice_api, client_kind, path, status):
    client = alice_api if client_kind == "alice" else Client()
    body = assert_problem(client.get(f"{API}{path}"), status)
    assert body["type"] == "about:blank"


HUGE = 2**63  # one past the largest id a database column holds


@pytest.mark.parametrize("path", [
    f"{API}/groups/{HUGE}", f"{API}/events?group={HUGE}", f"{API}/analytics?group={HUGE}",
])
def test_an_id_past_64_bits_is_not_found_not_a_500(world, alice_api, path):
    response = alice_api.get(path)
    assert response.status_code in (404, 422), response.content


def test_a_command_for_an_id_past_64_bits_is_not_a_500(world, alice_api):
    response = alice_api.post(f"{API}/commands", json.dumps(
        {"group_id": HUGE, "kind": "unmute", "user_id": 5}), content_type="application/json")
    assert response.status_code in (404, 422), response.content


@pytest.mark.parametrize("path", [f"/groups/{HUGE}/", f"/groups/{HUGE}/settings/",
                                  f"/analytics/?group={HUGE}"])
def test_a_page_for_an_id_past_64_bits_is_not_found(world, path):
    response = world.client(world.alice).get(path)
    assert response.status_code == 404
