"""ASGI entry point: HTTP through Django, websockets through Channels.

`application` is what separate web workers serve (`daphne nezuko.asgi:application`):
no bot runs there; with the update bus (on when REDIS_URL is set) a delivery is
appended to it, else it is answered 503 (Telegram retries, and reaches a runbot
that serves the web). runbot builds
its own with `build_application(receivers)`, sharing the table with its bots.
"""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nezuko.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from bots.webhook import (  # noqa: E402
    ASGIApp,
    WebhookReceivers,
    asgi_router,
    default_receivers,
    limit_daphne_request_bodies,
)
from dashboard.routing import websocket_urlpatterns  # noqa: E402

if "daphne.http_protocol" in sys.modules:
    # Served by daphne (runbot, or `daphne nezuko.asgi:application`): it reads a
    # whole body before calling us, so the webhook's limit must apply there too.
    limit_daphne_request_bodies()


def build_application(receivers: WebhookReceivers) -> ASGIApp:
    """Django and Channels, with webhook deliveries going to `receivers`."""
    return ProtocolTypeRouter(
        {
            # Telegram webhooks are answered before Django (bots/webhook.py says why).
            "http": asgi_router(django_asgi_app, receivers),
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )


application = build_application(default_receivers())
