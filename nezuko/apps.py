from django.apps import AppConfig


class NezukoConfig(AppConfig):
    """The project package as an app, so `manage.py runbot` (the composition root's
    command) is found here. `ready()` wires nothing: `nezuko.runtime` composes."""

    name = "nezuko"
    verbose_name = "Nezuko"
