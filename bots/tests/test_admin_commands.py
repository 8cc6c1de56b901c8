"""Admin's "queue again" on bot commands: never a second copy of one not finished."""

import pytest
from django.urls import reverse

from bots.models import BotCommand
from tests.factories import make_bot

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", ["pending", "running"])
def test_staff_cannot_queue_again_a_command_not_finished(client, django_user_model, status):
    client.force_login(django_user_model.objects.create_superuser("staff", "s@example.com", "pw"))
    command = BotCommand.objects.create(bot=make_bot(), kind="ban", payload={"user_id": 5},
                                        status=status)
    response = client.post(
        reverse("admin:bots_botcommand_changelist"),
        {"action": "queue_again", "_selected_action": [command.pk]},
    )
    assert response.status_code == 302
    # A running ban copied would ban twice; a pending one is queued already.
    assert list(BotCommand.objects.values_list("pk", flat=True)) == [command.pk]
