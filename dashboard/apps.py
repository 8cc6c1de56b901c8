from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from dashboard import auth, language

        # Django's own signal, for this app's own sessions: no other app is wired here.
        user_logged_in.connect(auth.remember_session, dispatch_uid="dashboard.remember_session")
        user_logged_in.connect(language.restore_on_login,
                               dispatch_uid="dashboard.restore_language")
