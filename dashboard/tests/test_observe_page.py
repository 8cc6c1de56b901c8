"""The group page's impact preview and its one click to start enforcing (issue 15)."""

from django.urls import reverse

from bots.models import AuditLog
from groups.models import ProtectedGroup
from verification.models import VerificationEvent


def url(name: str, *args) -> str:
    return reverse(f"dashboard:{name}", args=args)


def observe(world) -> None:
    ProtectedGroup.objects.filter(pk=world.cats.pk).update(action="observe")
    channel = world.cats.channels.get()
    for n, user_id in enumerate((7, 7, 8)):
        VerificationEvent.objects.create(
            group=world.cats, chat_id=world.cats.chat_id, user_id=user_id,
            outcome="would_restrict", missing_channel_ids=[channel.chat_id],
            detail="message" if n < 2 else "join")


class TestImpactPreview:
    def test_it_shows_what_would_have_been_restricted(self, world):
        observe(world)
        page = world.client(world.bob).get(url("group", world.cats.pk)).content.decode()
        assert 'id="would-restrict">2</strong> members: 3 decisions' in page
        assert "2 messages in the last 24 h" in page
        assert "Cat News (2)" in page
        assert "Start enforcing (mute)" in page

    def test_one_click_starts_enforcing_through_the_settings_service(self, world):
        observe(world)
        response = world.client(world.bob).post(url("group-enforce", world.cats.pk),
                                                HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert ProtectedGroup.objects.get(pk=world.cats.pk).action == "mute"
        entry = AuditLog.objects.get(action="group.settings_changed")
        assert entry.before == {"action": "observe"} and entry.after == {"action": "mute"}
        assert "Start enforcing" not in response.content.decode()

    def test_read_only_people_cannot_switch(self, world):
        observe(world)
        response = world.client(world.dave).post(url("group-enforce", world.cats.pk),
                                                 HTTP_HX_REQUEST="true")
        assert ProtectedGroup.objects.get(pk=world.cats.pk).action == "observe"
        assert "Start enforcing" not in world.client(world.dave).get(
            url("group", world.cats.pk)).content.decode()
        assert response.status_code in (200, 403)

    def test_it_returns_404_for_another_owner(self, world):
        observe(world)
        response = world.client(world.charlie).post(url("group-enforce", world.cats.pk))
        assert response.status_code == 404
        assert ProtectedGroup.objects.get(pk=world.cats.pk).action == "observe"
