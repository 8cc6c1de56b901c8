"""Any change to what the engine enforces invalidates the cached configuration.

Connected in GroupsConfig.ready(). Admin, the dashboard, the API and Telegram
commands all save through the ORM, so one place covers them all.
`QuerySet.update()` sends no signals: callers that use it call
`groups.config.bump_version()` themselves.
"""

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from groups.config import bump_version
from groups.models import EnforcedChannel, GroupAdmin, GroupChannel, ProtectedGroup

WATCHED = (ProtectedGroup, EnforcedChannel, GroupChannel, GroupAdmin)


def _changed(sender, **kwargs) -> None:
    bump_version()


for _model in WATCHED:
    post_save.connect(_changed, sender=_model, dispatch_uid=f"config-save-{_model.__name__}")
    post_delete.connect(_changed, sender=_model, dispatch_uid=f"config-delete-{_model.__name__}")


@receiver(m2m_changed, sender=ProtectedGroup.channels.through, dispatch_uid="config-m2m")
def _links_changed(sender, **kwargs) -> None:
    bump_version()
