from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Fold every verification event this process publishes into rollups.
        from analytics import folding
        from verification import events

        events.subscribe(folding.fold)
