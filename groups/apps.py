from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "groups"
    verbose_name = "Groups and channels"

    def ready(self) -> None:
        # Cached group configuration is dropped whenever these models change.
        from groups import signals  # noqa: F401
