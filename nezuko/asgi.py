"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nezuko.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from bots.webhook import asgi_router, limit_daphne_request_bodies  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

if "daphne.http_protocol" in sys.modules:
    # Served by daphne (runbot, or `daphne nezuko.asgi:application`): it reads a
    # whole body before calling us, so the webhook's limit must apply there too.
    limit_daphne_request_bodies()

application = ProtocolTypeRouter(
    {
        # Telegram webhooks are answered before Django (bots/webhook.py says why).
        "http": asgi_router(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
