"""The tenancy gate, asked directly."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from dashboard import access


class TestGroupsGate:
    def test_an_owner_sees_the_groups_she_set_up(self, world):
        assert list(access.visible_groups(world.alice)) == [world.cats]

    def test_an_admin_sees_the_groups_he_administers(self, world):
        assert list(access.visible_groups(world.bob)) == [world.cats]

    def test_it_returns_404_for_another_owner(self, world):
        with pytest.raises(Http404):
            access.get_group_for(world.charlie, world.cats.pk)
        with pytest.raises(Http404):
            access.get_group_for(world.alice, world.dogs.pk)

    def test_it_returns_404_for_junk_ids(self, world):
        with pytest.raises(Http404):
            access.get_group_for(world.alice, "1 OR 1=1")

    def test_staff_see_everything(self, world):
        assert access.visible_group_ids(world.staff) is None
        assert access.get_group_for(world.staff, world.dogs.pk) == world.dogs

    def test_the_read_only_role_sees_but_cannot_change(self, world):
        assert access.get_group_for(world.dave, world.cats.pk) == world.cats
        with pytest.raises(PermissionDenied):
            access.get_group_for_change(world.dave, world.cats.pk)

    def test_a_user_without_telegram_or_staff_sees_nothing(self, world, django_user_model):
        nobody = django_user_model.objects.create_user("nobody")
        assert not access.visible_groups(nobody).exists()


class TestRelatedResources:
    def test_channels_and_bots_follow_the_groups(self, world):
        assert [c.title for c in access.visible_channels(world.alice)] == ["Cat News"]
        assert list(access.visible_bots(world.alice)) == [world.cats.bot]
        with pytest.raises(Http404):
            access.get_bot_for(world.alice, world.dogs.bot_id)
        with pytest.raises(Http404):
            access.get_channel_for(world.alice, world.dogs.channels.get().pk)
