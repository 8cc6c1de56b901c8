from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from .conftest import ALICE_TG


def test_it_prints_a_link_that_logs_the_admin_in(world, settings):
    settings.DASHBOARD_URL = "http://dash.test"
    out = StringIO()
    call_command("login_link", "@bob", stdout=out)
    url = out.getvalue().strip()
    assert url.startswith("http://dash.test/login/link/")
    client = Client()
    assert client.post(url.removeprefix("http://dash.test")).status_code == 302
    assert client.get("/").context["user"] == world.bob


def test_a_numeric_id_works_and_an_unknown_name_is_a_clear_error(world):
    call_command("login_link", str(ALICE_TG), stdout=StringIO())
    with pytest.raises(CommandError, match="No Telegram user @nobody"):
        call_command("login_link", "@nobody", stdout=StringIO())
