"""The options of `/settings <name> <value>` in the API and the dashboard form (issue 15)."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from bots.models import AuditLog
from dashboard.forms import GroupSettingsForm
from dashboard.models import ApiToken
from groups.models import ProtectedGroup
from groups.services.settings import OPTIONS

API = "/api/v1"


def patch(user, group, data: dict):
    _, plaintext = ApiToken.issue(user, "script")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client.patch(f"{API}/groups/{group.pk}/settings", json.dumps(data),
                        content_type="application/json")


class TestApi:
    def test_every_option_is_accepted_under_its_telegram_name(self, world):
        response = patch(world.bob, world.cats, {
            "action": "observe", "policy": "any", "captcha": True, "captcha_timeout": 60,
            "warning_delay": 30, "fail": "open", "language": "auto", "throttle": 10})
        assert response.status_code == 200
        body = response.json()
        assert {k: body[k] for k in ("action", "policy", "captcha", "captcha_timeout",
                                     "warning_delete_after", "fail_mode", "language",
                                     "throttle")} == {
            "action": "observe", "policy": "any", "captcha": True, "captcha_timeout": 60,
            "warning_delete_after": 30, "fail_mode": "open", "language": "auto",
            "throttle": 10}
        # One change, one audit row.
        assert AuditLog.objects.get(action="group.settings_changed").after["policy"] == "any"

    @pytest.mark.parametrize("data,field", [
        ({"policy": "11"}, "policy"),
        ({"policy": "some"}, "policy"),
        ({"action": "ban"}, "action"),
        ({"captcha_timeout": 5}, "captcha_timeout"),
        ({"warning_delay": -1}, "warning_delay"),
        ({"fail": "sometimes"}, "fail"),
        ({"language": "Klingon!"}, "language"),
        ({"throttle": 4000}, "throttle"),
    ])
    def test_wrong_values_are_refused_naming_the_option(self, world, data, field):
        response = patch(world.alice, world.cats, data)
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]]
        assert not AuditLog.objects.exists()


class TestForm:
    def test_the_form_labels_its_fields_with_the_option_names(self):
        labels = {str(f.label) for f in GroupSettingsForm()}
        assert set(OPTIONS) <= labels

    def test_the_form_saves_the_new_options(self, world):
        data = {"action": "mute", "policy": "3", "captcha": "on", "captcha_timeout": "90",
                "throttle": "0", "language": "FA", "warning_delete_after": "60",
                "fail_mode": "closed", "warning_text": "", "allowed_user_ids": ""}
        response = world.client(world.bob).post(
            reverse("dashboard:group-settings", args=[world.cats.pk]), data,
            HTTP_HX_REQUEST="true")
        assert "Saved." in response.content.decode()
        group = ProtectedGroup.objects.get(pk=world.cats.pk)
        assert (group.policy, group.captcha, group.captcha_timeout, group.throttle,
                group.language) == ("3", True, 90, 0, "fa")

    def test_wrong_values_fail_in_place(self, world):
        data = {"action": "mute", "policy": "11", "captcha_timeout": "5", "throttle": "0",
                "language": "x!", "warning_delete_after": "60", "fail_mode": "closed"}
        response = world.client(world.bob).post(
            reverse("dashboard:group-settings", args=[world.cats.pk]), data,
            HTTP_HX_REQUEST="true")
        page = response.content.decode()
        for field in ("policy", "captcha_timeout", "language"):
            assert f'id="{field}-errors"' in page
        assert ProtectedGroup.objects.get(pk=world.cats.pk).policy == "all"
