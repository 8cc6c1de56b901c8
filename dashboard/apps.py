from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from bots.supervisor import extend_applications
        from dashboard import auth, live, telegram
        from verification import events

        user_logged_in.connect(auth.remember_session, dispatch_uid="dashboard.remember_session")
        # Forward every verification event of this process to the browsers watching it.
        events.subscribe(live.forward)
        # /login in a private chat with any bot runbot runs.
        extend_applications(telegram.install)
