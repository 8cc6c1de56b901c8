from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from analytics import folding
        from bots import metrics, supervisor
        from verification import events

        # Fold every verification event and every Bot API call of this process
        # into rollups; runbot awaits one last flush after its bots drained
        # (what the database cannot take then waits in the disk spool).
        events.subscribe(folding.fold)
        metrics.observe_calls(folding.record_api_call)
        supervisor.flush_on_shutdown(folding.buffer.aclose)
